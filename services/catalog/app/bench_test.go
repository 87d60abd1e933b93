package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
)

// benchQuery is the benchmarked Sources page: a filter and a sort over
// 10,000 sources (about a third match), first page of 50.
var benchQuery = catalog.Query{Sort: "name:desc", Filters: []string{"environment:eq:prod", "type:in:javascript,ios"}, Page: catalog.Page{Count: 50}}

func seedSources(b *testing.B, e *env, n int) {
	b.Helper()
	p, err := e.svc.Catalog().Authenticate(e.owner)
	if err != nil {
		b.Fatal(err)
	}
	types := []string{"javascript", "node-js", "ios", "python", "go"}
	envs := []catalogv1.Environment{catalogv1.Environment_ENVIRONMENT_DEV, catalogv1.Environment_ENVIRONMENT_PROD}
	for i := 0; i < n; i++ {
		if _, err := e.svc.Catalog().CreateSource(context.Background(), p, &catalogv1.CreateSourceRequest{
			Name: fmt.Sprintf("source %05d", i), Type: types[i%len(types)], Environment: envs[i%3%2],
		}); err != nil {
			b.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
}

// reportLatency reports p50 and p99 of the measured durations in ms.
func reportLatency(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkListSources10k measures the Sources page (domain call: filter,
// sort, page, fill the row columns) over 10,000 sources.
func BenchmarkListSources10k(b *testing.B) {
	e := newEnv(b)
	seedSources(b, e, 10000)
	p, _ := e.svc.Catalog().Authenticate(e.owner)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rows, info, err := e.svc.Catalog().ListSources(p, benchQuery)
		lat = append(lat, time.Since(start))
		if err != nil || len(rows) != 50 || info.Total < 1000 {
			b.Fatalf("rows %d total %d err %v", len(rows), info.Total, err)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkListSources10kREST measures the same page through the REST
// gateway, gRPC, auth and JSON: what the console waits for.
func BenchmarkListSources10kREST(b *testing.B) {
	e := newEnv(b)
	seedSources(b, e, 10000)
	q := url.Values{"sort": {benchQuery.Sort}, "filter": benchQuery.Filters, "pagination.count": {"50"}}
	path := "/api/v1/sources?" + q.Encode()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r := e.do(b, e.owner, http.MethodGet, path, nil)
		lat = append(lat, time.Since(start))
		if r.status != 200 {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}
