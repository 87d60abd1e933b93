package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
)

// pageFixture creates sources with varied columns over two simulated days
// and two creators, and destinations on some of them.
func pageFixture(t *testing.T, e *env) (editorEmail string) {
	t.Helper()
	_, editor := e.tokenFor(t, "editor@acme.test", catalogv1.Role_ROLE_EDITOR)
	types := []string{"javascript", "node-js", "ios", "python"}
	for i := 0; i < 12; i++ {
		token := e.owner
		if i%3 == 0 {
			token = editor
		}
		env := "ENVIRONMENT_PROD"
		if i%2 == 0 {
			env = "ENVIRONMENT_DEV"
		}
		s := e.createSource(t, token, map[string]any{"name": fmt.Sprintf("Source %02d", i), "type": types[i%4], "environment": env, "enabled": i%5 != 0})
		e.clock.Advance(time.Second)
		for j := 0; j < i%3; j++ {
			e.createWebhook(t, e.owner, fmt.Sprintf("hook %02d-%d", i, j), s.ID, j == 0)
		}
		if i == 5 {
			e.clock.Advance(24 * time.Hour) // sources 6.. are created on 2026-03-02
		}
	}
	return "editor@acme.test"
}

func listSources(t *testing.T, e *env, token string, q url.Values) ([]source, map[string]any) {
	t.Helper()
	var out struct {
		Sources    []source
		Pagination map[string]any
	}
	mustOK(t, e.do(t, token, http.MethodGet, "/api/v1/sources?"+q.Encode(), nil), &out)
	return out.Sources, out.Pagination
}

func names(ss []source) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

func TestSourcesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pageFixture(t, e)
	all, _ := listSources(t, e, e.owner, url.Values{"pagination.count": {"200"}, "filter": {"name:contains:source "}})
	if len(all) != 12 {
		t.Fatalf("got %d sources, want 12", len(all))
	}

	t.Run("rows carry every column of the page", func(t *testing.T) {
		got, _ := listSources(t, e, e.owner, url.Values{"filter": {"name:eq:Source 04"}})
		s := got[0]
		if len(got) != 1 || s.Enabled != true || s.Environment != "ENVIRONMENT_DEV" || len(s.Destinations) != 1 || s.Type != "javascript" ||
			s.Category != "Website" || s.CreatedAt != "2026-03-01T09:00:04Z" || s.CreatedByEmail != "owner@acme.test" {
			t.Fatalf("row = %+v", got)
		}
	})

	// want sorts all by the same rule the API documents (value, then id).
	want := func(less func(a, b source) int, desc bool) []string {
		c := slices.Clone(all)
		sort.SliceStable(c, func(i, j int) bool {
			r := less(c[i], c[j])
			if r == 0 {
				r = strings.Compare(c[i].ID, c[j].ID)
			}
			if desc {
				return r > 0
			}
			return r < 0
		})
		return names(c)
	}
	status := func(s source) string { return map[bool]string{true: "enabled", false: "disabled"}[s.Enabled] }
	for _, tc := range []struct {
		col  string
		less func(a, b source) int
	}{
		{"status", func(a, b source) int { return strings.Compare(status(a), status(b)) }},
		{"environment", func(a, b source) int { return strings.Compare(a.Environment, b.Environment) }},
		{"destinations", func(a, b source) int { return len(a.Destinations) - len(b.Destinations) }},
		{"type", func(a, b source) int { return strings.Compare(a.Type, b.Type) }},
		{"category", func(a, b source) int {
			return strings.Compare(strings.ToLower(a.Category), strings.ToLower(b.Category))
		}},
		{"createdAt", func(a, b source) int { return strings.Compare(a.CreatedAt, b.CreatedAt) }},
		{"createdBy", func(a, b source) int { return strings.Compare(a.CreatedByEmail, b.CreatedByEmail) }},
		{"name", func(a, b source) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) }},
	} {
		for _, dir := range []string{"asc", "desc"} {
			t.Run("sort by "+tc.col+" "+dir, func(t *testing.T) {
				got, _ := listSources(t, e, e.owner, url.Values{"sort": {tc.col + ":" + dir}, "filter": {"name:contains:source "}})
				if w := want(tc.less, dir == "desc"); !slices.Equal(names(got), w) {
					t.Fatalf("got %v\nwant %v", names(got), w)
				}
			})
		}
	}

	for _, tc := range []struct {
		filter []string
		want   []string
	}{
		{[]string{"status:eq:disabled"}, []string{"Source 00", "Source 05", "Source 10"}},
		{[]string{"environment:in:dev", "type:eq:node-js"}, nil},
		{[]string{"environment:eq:prod", "type:in:node-js,python"}, []string{"Source 01", "Source 03", "Source 05", "Source 07", "Source 09", "Source 11"}},
		{[]string{"destinations:eq:2"}, []string{"Source 02", "Source 05", "Source 08", "Source 11"}},
		{[]string{"destinations:gte:1", "destinations:lt:2"}, []string{"Source 01", "Source 04", "Source 07", "Source 10"}},
		{[]string{"destinations:contains:hook 04"}, []string{"Source 04"}},
		{[]string{"type:contains:JS"}, []string{"Source 01", "Source 05", "Source 09"}},
		{[]string{"category:eq:mobile"}, []string{"Source 02", "Source 06", "Source 10"}},
		{[]string{"createdAt:gte:2026-03-02"}, []string{"Source 06", "Source 07", "Source 08", "Source 09", "Source 10", "Source 11"}},
		{[]string{"createdAt:lte:2026-03-01", "createdBy:eq:editor@acme.test"}, []string{"Source 00", "Source 03"}},
		{[]string{"createdAt:lt:2026-03-01T09:00:00Z"}, nil},
		{[]string{"createdAt:gt:2026-03-01T09:00:00Z", "createdBy:contains:editor"}, []string{"Source 03", "Source 06", "Source 09"}},
	} {
		t.Run("filter "+strings.Join(tc.filter, " "), func(t *testing.T) {
			q := url.Values{"sort": {"name:asc"}, "filter": append([]string{"name:contains:source "}, tc.filter...)}
			got, p := listSources(t, e, e.owner, q)
			if !slices.Equal(names(got), tc.want) && !(len(got) == 0 && tc.want == nil) {
				t.Fatalf("got %v, want %v", names(got), tc.want)
			}
			if fmt.Sprint(p["totalEntries"]) != fmt.Sprint(len(tc.want)) {
				t.Fatalf("totalEntries = %v, want %d", p["totalEntries"], len(tc.want))
			}
		})
	}

	t.Run("errors name the parameter and the rule", func(t *testing.T) {
		for _, tc := range []struct {
			q      string
			reason string
			field  string
		}{
			{"sort=colour", "CATALOG_LIST_COLUMN_UNKNOWN", "sort"},
			{"sort=name:sideways", "CATALOG_SORT_DIRECTION_INVALID", "sort"},
			{"filter=colour:eq:red", "CATALOG_LIST_COLUMN_UNKNOWN", "filter[0]"},
			{"filter=name:eq:x&filter=status:contains:en", "CATALOG_FILTER_OPERATOR_INVALID", "filter[1]"},
			{"filter=status:eq:paused", "CATALOG_FILTER_VALUE_INVALID", "filter[0]"},
			{"filter=createdAt:gte:yesterday", "CATALOG_FILTER_VALUE_INVALID", "filter[0]"},
			{"filter=nonsense", "CATALOG_FILTER_SYNTAX", "filter[0]"},
			{"pagination.count=500", "CATALOG_PAGINATION_COUNT_RANGE", "pagination.count"},
			{"pagination.cursor=zzz", "CATALOG_PAGINATION_CURSOR_INVALID", "pagination.cursor"},
		} {
			t.Run(tc.q, func(t *testing.T) {
				wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources?"+tc.q, nil), 400, "INVALID_ARGUMENT", tc.reason, tc.field)
			})
		}
	})
}

func TestDestinationsPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pageFixture(t, e)
	get := func(q url.Values) []string {
		var out struct {
			Destinations []struct {
				Name   string
				Source struct{ Name string }
			}
		}
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/destinations?"+q.Encode(), nil), &out)
		var n []string
		for _, d := range out.Destinations {
			n = append(n, d.Name+"@"+d.Source.Name)
		}
		return n
	}
	for _, tc := range []struct {
		q    url.Values
		want []string
	}{
		{url.Values{"filter": {"status:eq:disabled"}, "sort": {"name:asc"}}, []string{"hook 02-1@Source 02", "hook 05-1@Source 05", "hook 08-1@Source 08", "hook 11-1@Source 11"}},
		{url.Values{"filter": {"sources:contains:source 0", "createdAt:gte:2026-03-02", "name:contains:-0"}, "sort": {"sources:desc"}}, []string{"hook 08-0@Source 08", "hook 07-0@Source 07"}},
		{url.Values{"filter": {"type:eq:webhook", "category:eq:Raw Data", "name:contains:-1"}, "sort": {"createdAt:asc"}}, []string{"hook 02-1@Source 02", "hook 05-1@Source 05", "hook 08-1@Source 08", "hook 11-1@Source 11"}},
	} {
		t.Run(tc.q.Encode(), func(t *testing.T) {
			if got := get(tc.q); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/destinations?sort=environment", nil), 400, "INVALID_ARGUMENT", "CATALOG_LIST_COLUMN_UNKNOWN", "sort")
}

// TestPaginationUnderConcurrentWrites pages through the Sources page sorted
// by name while other sources are created and deleted, and checks that
// every source that existed throughout is returned exactly once, in order.
func TestPaginationUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var stable []string
	for i := 0; i < 40; i++ {
		s := e.createSource(t, e.owner, map[string]any{"name": fmt.Sprintf("stable %02d", i)})
		stable = append(stable, s.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := ctxAs(t, e.owner)
		for i := 0; ctx.Err() == nil; i++ {
			// Churn sorts before, between and after the stable names.
			for _, prefix := range []string{"a", "stable 1", "z"} {
				r, err := e.client.CreateSource(c, &catalogv1.CreateSourceRequest{Name: fmt.Sprintf("%s churn %d", prefix, i)})
				if err != nil {
					return
				}
				if i%2 == 0 {
					_, _ = e.client.DeleteSource(c, &catalogv1.DeleteSourceRequest{SourceId: r.GetSource().GetId()})
				}
			}
		}
	}()
	var seen []string
	cursor := ""
	pages := 0
	for {
		q := url.Values{"sort": {"name:asc"}, "pagination.count": {"3"}}
		if cursor != "" {
			q.Set("pagination.cursor", cursor)
		}
		got, p := listSources(t, e, e.owner, q)
		for _, s := range got {
			if strings.HasPrefix(s.Name, "stable") && !strings.Contains(s.Name, "churn") {
				seen = append(seen, s.Name)
			}
		}
		pages++
		next, _ := p["next"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	cancel()
	wg.Wait()
	if !slices.Equal(seen, stable) {
		t.Fatalf("over %d pages saw %v\nwant %v", pages, seen, stable)
	}
	t.Run("previous goes back one page", func(t *testing.T) {
		_, p1 := listSources(t, e, e.owner, url.Values{"sort": {"name:asc"}, "pagination.count": {"3"}, "filter": {"name:contains:stable 0"}})
		p2, pp := listSources(t, e, e.owner, url.Values{"sort": {"name:asc"}, "pagination.count": {"3"}, "filter": {"name:contains:stable 0"}, "pagination.cursor": {p1["next"].(string)}})
		back, _ := listSources(t, e, e.owner, url.Values{"sort": {"name:asc"}, "pagination.count": {"3"}, "filter": {"name:contains:stable 0"}, "pagination.cursor": {pp["previous"].(string)}})
		if !slices.Equal(names(p2), []string{"stable 03", "stable 04", "stable 05"}) || !slices.Equal(names(back), []string{"stable 00", "stable 01", "stable 02"}) {
			t.Fatalf("page 2 %v, back %v", names(p2), names(back))
		}
		wantError(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources?sort=type&pagination.cursor="+url.QueryEscape(p1["next"].(string)), nil),
			400, "INVALID_ARGUMENT", "CATALOG_PAGINATION_CURSOR_INVALID", "pagination.cursor")
	})
}
