// Command benchwarehouse measures warehouse loading: rows/s into DuckDB and PostgreSQL through the
// loader (bulk path and multi-row INSERT), PostgreSQL's ratio to a plain COPY of the same rows
// into empty tables in the same run, and time-to-visible at a steady event rate through the real
// pipeline (embedded NATS, durable consumer, micro-batches). `make bench-warehouse` runs it.
//
// PostgreSQL: the admin URL in SWITCHYARD_BENCH_POSTGRES_URL (default
// postgres://postgres@127.0.0.1:5432/postgres); a scratch database is created and dropped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"github.com/switchyardhq/switchyard/services/internal/platform/jetstream"
	"github.com/switchyardhq/switchyard/services/internal/platform/natsembed"
	"github.com/switchyardhq/switchyard/services/internal/platform/streams"
	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/loader"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/pipeline"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/schema"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	events := flag.Int("events", 50000, "events per throughput run")
	batch := flag.Int("batch", 1000, "events per load (the pipeline's default batch)")
	rate := flag.Int("rate", 10000, "events/s for the time-to-visible run")
	seconds := flag.Int("seconds", 10, "duration of the time-to-visible run")
	flag.Parse()
	if err := run(*events, *batch, *rate, *seconds); err != nil {
		fmt.Fprintln(os.Stderr, "benchwarehouse:", err)
		os.Exit(1)
	}
}

// event returns the i-th benchmark event: a track call with eight properties and a context.
func event(prefix string, i int) []byte {
	return fmt.Appendf(nil, `{"type":"track","messageId":"%s-%08d","userId":"u-%d","anonymousId":"a-%d","event":"Order Completed",`+
		`"receivedAt":"2024-05-01T10:00:00.000Z","sentAt":"2024-05-01T10:00:00.000Z","timestamp":"2024-05-01T10:00:00.000Z",`+
		`"properties":{"orderId":"o-%d","total":%d.5,"revenue":%d,"currency":"EUR","coupon":"SAVE10","discount":2,"shipping":4.99,"tags":["a","b"]},`+
		`"context":{"ip":"203.0.113.9","library":{"name":"analytics-node","version":"2.1.0"},"page":{"path":"/checkout","url":"https://example.com/checkout"}}}`,
		prefix, i, i%1000, i, i, i%500, i)
}

func run(n, batch, rate, seconds int) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "benchwarehouse-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	pgURL, dropDB, err := scratchPostgres(ctx)
	if err != nil {
		return err
	}
	defer dropDB()

	evs := make([][]byte, n)
	for i := range evs {
		evs[i] = event("bench", i)
	}
	fmt.Printf("warehouse load benchmark: %d track events (2 rows each: tracks + order_completed), %d events per load\n", n, batch)

	type result struct {
		name       string
		rowsPerSec float64
	}
	var results []result
	for _, c := range []struct {
		name     string
		open     func(i int) (sqlengine.Engine, error)
		multiRow bool
	}{
		{"duckdb appender+merge", func(i int) (sqlengine.Engine, error) {
			return sqlengine.OpenDuckDB(filepath.Join(tmp, fmt.Sprintf("a%d.duckdb", i)))
		}, false},
		{"duckdb multi-row INSERT", func(i int) (sqlengine.Engine, error) {
			return sqlengine.OpenDuckDB(filepath.Join(tmp, fmt.Sprintf("b%d.duckdb", i)))
		}, true},
		{"postgres COPY+merge", func(int) (sqlengine.Engine, error) { return sqlengine.OpenPostgres(pgURL) }, false},
		{"postgres multi-row INSERT", func(int) (sqlengine.Engine, error) { return sqlengine.OpenPostgres(pgURL) }, true},
	} {
		e, err := c.open(len(results))
		if err != nil {
			return err
		}
		l := loader.NewWithOptions(e, nil, loader.Options{MultiRowInsert: c.multiRow})
		schemaName := fmt.Sprintf("bench_%d", len(results))
		in := evs
		if c.multiRow {
			in = evs[:min(len(evs), 10000)] // slow on DuckDB: a smaller sample is enough to compare
		}
		start := time.Now()
		var rows int64
		for chunk := range slices.Chunk(in, batch) {
			res, err := l.Load(ctx, schemaName, chunk)
			if err != nil {
				_ = e.Close()
				return fmt.Errorf("%s: %w", c.name, err)
			}
			for _, v := range res.Rows {
				rows += v
			}
		}
		el := time.Since(start)
		_ = e.Close()
		results = append(results, result{c.name, float64(rows) / el.Seconds()})
		fmt.Printf("  %-28s %9.0f rows/s  (%d rows in %v, %.0f events/s)\n", c.name, float64(rows)/el.Seconds(), rows, el.Round(time.Millisecond), float64(len(in))/el.Seconds())
	}

	copyRate, err := plainCopy(ctx, pgURL, evs)
	if err != nil {
		return err
	}
	fmt.Printf("  %-28s %9.0f rows/s  (same rows, COPY into empty tables without keys, one transaction)\n", "postgres plain COPY", copyRate)
	fmt.Printf("  postgres loader / plain COPY ratio: %.2f\n", results[2].rowsPerSec/copyRate)

	fmt.Printf("time-to-visible at %d events/s for %d s through the pipeline (embedded NATS, batch 1000 / 500 ms):\n", rate, seconds)
	for _, c := range []struct {
		name string
		typ  catalogv1.WarehouseType
		set  map[string]any
	}{
		{"duckdb", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(tmp, "ttv.duckdb")}},
		{"postgres", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": pgURL}},
	} {
		if err := timeToVisible(ctx, filepath.Join(tmp, "nats-"+c.name), c.name, c.typ, c.set, rate, seconds); err != nil {
			return fmt.Errorf("time-to-visible %s: %w", c.name, err)
		}
	}
	return nil
}

// scratchPostgres creates a scratch database and returns its URL and a function dropping it.
func scratchPostgres(ctx context.Context) (string, func(), error) {
	admin := os.Getenv("SWITCHYARD_BENCH_POSTGRES_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres (set SWITCHYARD_BENCH_POSTGRES_URL): %w", err)
	}
	name := fmt.Sprintf("bench_warehouse_%d", os.Getpid())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = conn.Close(ctx)
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	cfg := conn.Config()
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	if cfg.Password != "" {
		u = fmt.Sprintf("postgres://%s:%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
	}
	return u, func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = conn.Close(context.Background())
	}, nil
}

// plainCopy COPYs the rows the loader would write (same tables, columns and values) into empty
// tables without keys, in one transaction, and returns rows/s. Building the rows is not timed.
func plainCopy(ctx context.Context, url string, evs [][]byte) (float64, error) {
	byTable := map[string][]schema.Row{}
	now := time.Now().UTC()
	for _, raw := range evs {
		ev, err := schema.ParseObject(raw)
		if err != nil {
			return 0, err
		}
		rows, _, err := schema.Build(ev, now)
		if err != nil {
			return 0, err
		}
		for _, r := range rows {
			byTable[r.Table] = append(byTable[r.Table], r)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	d := sqlengine.PostgresDialect()
	type prepared struct {
		table string
		cols  []string
		vals  [][]any
	}
	var work []prepared
	var total int
	for table, rows := range byTable {
		kinds := map[string]sqlengine.ColumnKind{}
		for _, r := range rows {
			for c, v := range r.Columns {
				kinds[c] = v.Kind
			}
		}
		cols := slices.Sorted(maps.Keys(kinds))
		var defs []string
		for _, c := range cols {
			defs = append(defs, d.QuoteIdent(c)+" "+d.ColumnType(kinds[c]))
		}
		name := "plain_" + table
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", d.QuoteIdent(name), joinComma(defs))); err != nil {
			return 0, err
		}
		p := prepared{table: name, cols: cols}
		for _, r := range rows {
			vals := make([]any, len(cols))
			for i, c := range cols {
				if v, ok := r.Columns[c]; ok {
					vals[i] = v.V
				}
			}
			p.vals = append(p.vals, vals)
		}
		total += len(rows)
		work = append(work, p)
	}
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range work {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{p.table}, p.cols, pgx.CopyFromRows(p.vals)); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// timeToVisible publishes rate events/s for the given seconds into an embedded NATS and measures,
// per event, the time from its publish to the first poll (every 25 ms) that sees it in the
// warehouse. Events load in stream order, so "count(*) ≥ k" means event k is visible.
func timeToVisible(ctx context.Context, storeDir, name string, typ catalogv1.WarehouseType, settings map[string]any, rate, seconds int) error {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: storeDir})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	conn, err := jetstream.ConnectInProcess(srv, "bench")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if err := streams.Ensure(ctx, conn.JS, streams.DefaultOptions); err != nil {
		return err
	}
	st, err := structpb.NewStruct(settings)
	if err != nil {
		return err
	}
	wh := &catalogv1.Warehouse{Id: "bench-" + name, WorkspaceId: "ws", Type: typ, Settings: st, SourceIds: []string{"src"}, Enabled: true}
	mgr := pipeline.New(conn.JS, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	rctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); mgr.Wait() }()
	mgr.Reconcile(rctx, []*catalogv1.ConfigSnapshot{{
		Workspace: &catalogv1.Workspace{Id: "ws"}, Sources: []*catalogv1.Source{{Id: "src", Slug: "ttv"}}, Warehouses: []*catalogv1.Warehouse{wh},
	}})
	eng, err := mgr.Engine(wh.GetId())
	if err != nil {
		return err
	}

	total := rate * seconds
	published := make([]time.Time, total)
	subject := streams.EventsSubject("ws", "src")
	pubErr := make(chan error, 1)
	go func() {
		const tick = 10 * time.Millisecond
		perTick := rate / int(time.Second/tick)
		start := time.Now()
		for i := 0; i < total; {
			for j := 0; j < perTick && i < total; j++ {
				id := fmt.Sprintf("ttv-%08d", i)
				msg := jetstream.NewMsg(ctx, subject, event("ttv", i), jetstream.Headers{MsgID: id, Workspace: "ws", Source: "src", EventType: "track"})
				published[i] = time.Now()
				if _, err := conn.JS.PublishMsgAsync(msg); err != nil {
					pubErr <- err
					return
				}
				i++
			}
			next := start.Add(time.Duration(i/perTick) * tick)
			time.Sleep(time.Until(next))
		}
		select {
		case <-conn.JS.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			pubErr <- errors.New("publish acks timed out")
			return
		}
		pubErr <- nil
	}()

	visible := make([]time.Duration, 0, total)
	seen := 0
	deadline := time.Now().Add(time.Duration(seconds)*time.Second + 60*time.Second)
	q := "SELECT count(*) FROM " + sqlengine.QualifiedName(eng.Dialect(), "ttv", "order_completed")
	for seen < total && time.Now().Before(deadline) {
		var c int64
		if err := eng.DB().QueryRowContext(ctx, q).Scan(&c); err == nil {
			now := time.Now()
			for ; seen < int(c) && seen < total; seen++ {
				visible = append(visible, now.Sub(published[seen]))
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := <-pubErr; err != nil {
		return err
	}
	if seen < total {
		return fmt.Errorf("only %d of %d events visible after the deadline", seen, total)
	}
	sort.Slice(visible, func(i, j int) bool { return visible[i] < visible[j] })
	pct := func(p float64) time.Duration {
		return visible[min(len(visible)-1, int(p*float64(len(visible))))].Round(time.Millisecond)
	}
	fmt.Printf("  %-9s %d events: p50 %v  p99 %v  max %v\n", name, total, pct(0.50), pct(0.99), visible[len(visible)-1].Round(time.Millisecond))
	return nil
}
