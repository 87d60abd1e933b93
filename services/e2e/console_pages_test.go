package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// consoleChromiumPath is Debian's chromium (make test-deps installs it).
const consoleChromiumPath = "/usr/bin/chromium"

// consoleStepTimeout bounds one browser step (an action plus its wait).
const consoleStepTimeout = 15 * time.Second

// consoleBrowser starts headless chromium with a fresh profile at a laptop
// screen size and returns the context of its tab.
func consoleBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(consoleChromiumPath); err != nil {
		t.Fatalf("chromium is required at %s (make test-deps installs Debian's chromium): %v", consoleChromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(consoleChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as bctx: no
	// timeout on it (chromedp would stop the browser when it fires).
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// consolePage drives the console in one tab and fails the test with the
// page's visible state when a step does not complete.
type consolePage struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// do runs actions within consoleStepTimeout.
func (p *consolePage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, consoleStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage state: %s", what, err, p.state())
	}
}

// wait polls the JavaScript condition until it is true.
func (p *consolePage) wait(what, cond string) {
	p.t.Helper()
	p.do("wait for "+what, chromedp.Action[chromedp.Void](func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(consoleStepTimeout-time.Second))(ctx, t)
		return chromedp.Void{}, err
	}))
}

// eval evaluates a JavaScript expression into T.
func consoleEval[T any](p *consolePage, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, consoleStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// state is a short text of what the page shows, for failure messages.
func (p *consolePage) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + " | " + document.getElementById('main').innerText.replace(/\s+/g, ' ').slice(0, 1500)`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// screenshot writes a full-page PNG named name.png into the screenshot folder.
func (p *consolePage) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, consoleStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := filepath.Join(p.shots, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// goTo moves the single-page app to a fragment route (no page load).
func (p *consolePage) goTo(hash string) {
	p.t.Helper()
	p.do("go to "+hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+jsString(hash)))
}

// signIn fills the sign-in form with the keyboard and waits for the page.
func (p *consolePage) signIn(token string) {
	p.t.Helper()
	p.do("sign in",
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token+kb.Enter),
	)
	p.wait("the signed-in header", `!document.getElementById('top').hidden && document.getElementById('who').textContent.includes('owner')`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsEquals is a condition comparing the JSON of a JavaScript expression with want.
func jsEquals(expr string, want any) string {
	b, _ := json.Marshal(want)
	return fmt.Sprintf("JSON.stringify(%s) === %s", expr, jsString(string(b)))
}

const (
	jsSourceNames      = `[...document.querySelectorAll('#sources-table tbody tr[data-id] td[data-col="name"]')].map(e => e.textContent)`
	jsDestinationNames = `[...document.querySelectorAll('#destinations-table tbody tr[data-id] td[data-col="name"]')].map(e => e.textContent)`
	jsHeaders          = `[...document.querySelectorAll('.tablewrap thead th .label')].map(e => e.textContent)`
	jsPickerLabels     = `[...document.querySelectorAll('#column-picker label')].map(e => e.textContent)`
	jsPickerIdle       = `document.querySelector('#column-picker') && ![...document.querySelectorAll('#column-picker input')].some(b => b.disabled)`
)

// consoleREST creates a resource over the REST API and returns the decoded answer.
func consoleREST(t *testing.T, sy *switchyard, method, path string, body any) map[string]any {
	t.Helper()
	res := sy.admin(t, method, path, body)
	if res.Status != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", method, path, res.Status, res.Body)
	}
	var out map[string]any
	decodeJSON(t, res.Body, &out)
	return out
}

func consoleCreateSource(t *testing.T, sy *switchyard, name, typ, env string) string {
	t.Helper()
	out := consoleREST(t, sy, http.MethodPost, "/api/v1/sources", map[string]any{"name": name, "type": typ, "environment": env})
	return out["source"].(map[string]any)["id"].(string)
}

// consoleHook is a webhook endpoint that rejects (400) or accepts (200)
// events and records the messageIds it accepted.
type consoleHook struct {
	srv      *httptest.Server
	accept   atomic.Bool
	mu       sync.Mutex
	accepted []string
}

func newConsoleHook(t *testing.T) *consoleHook {
	h := &consoleHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !h.accept.Load() {
			http.Error(w, `{"error":"rejected by the test"}`, http.StatusBadRequest)
			return
		}
		var ev struct {
			MessageID string `json:"messageId"`
		}
		_ = json.Unmarshal(body, &ev)
		h.mu.Lock()
		h.accepted = append(h.accepted, ev.MessageID)
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *consoleHook) got(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.accepted, id)
}

// TestConsoleSourcesAndDestinations drives the console in headless chromium
// against the real binary: sign-in with the token kept in memory only, the
// column picker (five at most), sort, filter, pagination, the view restored
// after a reload, the source and destination pages, creating a source and
// connecting a destination, and a dead letter redriven from the console.
func TestConsoleSourcesAndDestinations(t *testing.T) {
	sy := startSwitchyard(t)

	// Fixtures over REST. Sources, newest first: 8 jobs, Billing Worker,
	// iOS App, Web Shop, then the bootstrap HTTP API source.
	webShop := consoleCreateSource(t, sy, "Web Shop", "javascript", "ENVIRONMENT_PROD")
	consoleCreateSource(t, sy, "iOS App", "ios", "ENVIRONMENT_PROD")
	billing := consoleCreateSource(t, sy, "Billing Worker", "go", "ENVIRONMENT_DEV")
	for i := 1; i <= 8; i++ {
		consoleCreateSource(t, sy, fmt.Sprintf("Job %02d", i), "python", "ENVIRONMENT_DEV")
	}
	hook := newConsoleHook(t)
	hook.accept.Store(true)
	consoleREST(t, sy, http.MethodPost, "/api/v1/destinations", map[string]any{
		"name": "Orders Hook", "type": "webhook", "sourceId": webShop, "enabled": true,
		"settings": map[string]any{"url": hook.srv.URL + "/orders", "sharedSecret": "s3cret-value"},
	})
	consoleREST(t, sy, http.MethodPost, "/api/v1/destinations", map[string]any{
		"name": "Audit Hook", "type": "webhook", "sourceId": billing, "enabled": false,
		"settings": map[string]any{"url": hook.srv.URL + "/audit"},
	})

	shots := os.Getenv("CONSOLE_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots are written to %s", shots)
	p := &consolePage{t: t, ctx: consoleBrowser(t), shots: shots}
	token := sy.Boot.AdminToken

	t.Run("sign-in with the API token shows the sources", func(t *testing.T) {
		p.t = t
		p.do("open the console", chromedp.Navigate(sy.baseURL()+"/#/sources"))
		p.wait("the sign-in form", `document.activeElement && document.activeElement.id === 'token'`)
		p.screenshot("signin")
		p.do("send a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "wrong-token-0123456789"+kb.Enter))
		p.wait("the refusal", `document.getElementById('token-error').textContent === 'That token was not accepted. Check it and try again.'`)
		p.do("clear the field", chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = ''`))
		p.signIn(token)
		p.wait("all rows, newest first", jsEquals(jsSourceNames, []string{
			"Job 08", "Job 07", "Job 06", "Job 05", "Job 04", "Job 03", "Job 02", "Job 01",
			"Billing Worker", "iOS App", "Web Shop", "HTTP API"}))
		if got := consoleEval[[]string](p, jsHeaders); !slices.Equal(got, []string{"Name", "Status", "Environment", "Destinations", "Type", "Category"}) {
			t.Errorf("default headers = %q", got)
		}
		row := consoleEval[string](p, `document.querySelector('#sources-table tr[data-id="`+webShop+`"]').innerText.replace(/\s+/g, ' ').trim()`)
		if want := "Web Shop Enabled prod 1 · Orders Hook javascript Website"; row != want {
			t.Errorf("Web Shop row = %q, want %q", row, want)
		}
	})

	t.Run("column picker offers the page's seven columns and refuses a sixth", func(t *testing.T) {
		p.t = t
		p.do("open the picker", chromedp.Click(chromedp.CSS("#column-picker-button")))
		p.wait("the picker", jsPickerIdle)
		if got := consoleEval[[]string](p, jsPickerLabels); !slices.Equal(got, []string{"Status", "Environment", "Destinations", "Type", "Category", "Created At", "Created By"}) {
			t.Fatalf("picker columns = %q", got)
		}
		for _, step := range []struct{ col, headers string }{
			{"destinations", `["Name","Status","Environment","Type","Category"]`},
			{"category", `["Name","Status","Environment","Type"]`},
			{"createdAt", `["Name","Status","Environment","Type","Created At"]`},
			{"createdBy", `["Name","Status","Environment","Type","Created At","Created By"]`},
		} {
			p.do("toggle "+step.col, chromedp.Click(chromedp.CSS(`#column-picker input[value="`+step.col+`"]`)))
			p.wait("headers after "+step.col, `JSON.stringify(`+jsHeaders+`) === '`+step.headers+`' && `+jsPickerIdle)
		}
		p.do("try a sixth column", chromedp.Click(chromedp.CSS(`#column-picker input[value="destinations"]`)))
		p.wait("the rule", `document.getElementById('column-picker-rule').textContent !== ''`)
		if got := consoleEval[string](p, `document.getElementById('column-picker-rule').textContent`); got != "At most 5 columns can be shown. Clear one before adding Destinations." {
			t.Errorf("rule shown = %q", got)
		}
		if consoleEval[bool](p, `document.querySelector('#column-picker input[value="destinations"]').checked`) {
			t.Error("the sixth checkbox stayed checked")
		}
		if got := consoleEval[string](p, `document.getElementById('column-picker-count').textContent`); got != "5 of 5 chosen. At most 5 columns can be shown." {
			t.Errorf("counter = %q", got)
		}
		p.do("close the picker with Escape", chromedp.KeyEvent(kb.Escape))
		p.wait("the focus back on the stack button", `!document.querySelector('#column-picker') && document.activeElement.id === 'column-picker-button'`)
		if got := consoleEval[[]string](p, jsHeaders); !slices.Equal(got, []string{"Name", "Status", "Environment", "Type", "Created At", "Created By"}) {
			t.Errorf("headers after the refused sixth = %q", got)
		}
		var view struct {
			View struct {
				Columns []string `json:"columns"`
			} `json:"view"`
		}
		decodeJSON(t, sy.admin(t, http.MethodGet, "/api/v1/me/views/sources", nil).Body, &view)
		if want := []string{"status", "environment", "type", "createdAt", "createdBy"}; !slices.Equal(view.View.Columns, want) {
			t.Errorf("saved columns = %q, want %q", view.View.Columns, want)
		}
	})

	t.Run("sort and filter from the arrow next to the header", func(t *testing.T) {
		p.t = t
		p.do("open the Type menu", chromedp.Click(chromedp.CSS(`th[data-col="type"] button.arrow`)))
		p.do("sort ascending", chromedp.Click(chromedp.CSS(`#column-menu button[data-sort="asc"]`)))
		p.wait("rows by type", `JSON.stringify(`+jsSourceNames+`.slice(0, 4)) === '["Billing Worker","HTTP API","iOS App","Web Shop"]' && document.querySelector('th[data-col="type"]').getAttribute('aria-sort') === 'ascending'`)
		p.wait("focus back on the Type arrow", `document.activeElement === document.querySelector('th[data-col="type"] button.arrow')`)

		p.do("open the Environment menu", chromedp.Click(chromedp.CSS(`th[data-col="environment"] button.arrow`)))
		p.do("filter environment is prod",
			chromedp.SetValue(chromedp.CSS(`#column-menu select[name="value"]`), "prod"),
			chromedp.Click(chromedp.CSS(`#column-menu button[type="submit"]`)))
		p.wait("prod rows", jsEquals(jsSourceNames, []string{"iOS App", "Web Shop"}))
		if got := consoleEval[string](p, `document.querySelector('.chip').firstChild.textContent`); got != "Environment is prod" {
			t.Errorf("filter chip = %q", got)
		}
		p.do("open the Created At menu", chromedp.Click(chromedp.CSS(`th[data-col="createdAt"] button.arrow`)))
		p.do("filter created on or before yesterday",
			chromedp.SetValue(chromedp.CSS(`#column-menu select[name="op"]`), "lte"),
			chromedp.SetValue(chromedp.CSS(`#column-menu input[name="value"]`), time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")),
			chromedp.Click(chromedp.CSS(`#column-menu button[type="submit"]`)))
		p.wait("no rows", `document.querySelector('#sources-table td.empty')?.textContent === 'No sources match these filters.'`)
		p.do("remove the date filter", chromedp.Click(chromedp.CSS(`.chip[data-filter^="createdAt:lte:"] button`)))
		p.wait("prod rows again", jsEquals(jsSourceNames, []string{"iOS App", "Web Shop"}))

		var view struct {
			View struct {
				Sort    string   `json:"sort"`
				Filters []string `json:"filters"`
			} `json:"view"`
		}
		decodeJSON(t, sy.admin(t, http.MethodGet, "/api/v1/me/views/sources", nil).Body, &view)
		if view.View.Sort != "type:asc" || !slices.Equal(view.View.Filters, []string{"environment:eq:prod"}) {
			t.Errorf("saved view sort %q filters %q, want type:asc and [environment:eq:prod]", view.View.Sort, view.View.Filters)
		}
	})

	t.Run("the token is only in the tab's memory", func(t *testing.T) {
		p.t = t
		got := consoleEval[map[string]any](p, `(async () => ({
			cookie: document.cookie,
			local: localStorage.length,
			session: sessionStorage.length,
			databases: (await indexedDB.databases()).length,
			caches: (await caches.keys()).length,
			href: location.href,
		}))()`)
		want := map[string]any{"cookie": "", "local": float64(0), "session": float64(0), "databases": float64(0), "caches": float64(0), "href": sy.baseURL() + "/#/sources"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		ctx, cancel := context.WithTimeout(p.ctx, consoleStepTimeout)
		defer cancel()
		cookies, err := chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies.Cookies) != 0 {
			t.Errorf("browser holds %d cookies, want none: %+v", len(cookies.Cookies), cookies.Cookies[0])
		}
	})

	t.Run("reload signs out and the saved view comes back after signing in", func(t *testing.T) {
		p.t = t
		p.do("reload", chromedp.Reload())
		p.wait("the sign-in form", `document.getElementById('token') !== null && document.getElementById('top').hidden`)
		if n := consoleEval[int](p, `document.querySelectorAll('#sources-table').length`); n != 0 {
			t.Fatalf("the list is shown before signing in again")
		}
		p.signIn(token)
		p.wait("prod rows", jsEquals(jsSourceNames, []string{"iOS App", "Web Shop"}))
		if got := consoleEval[[]string](p, jsHeaders); !slices.Equal(got, []string{"Name", "Status", "Environment", "Type", "Created At", "Created By"}) {
			t.Errorf("restored headers = %q", got)
		}
		if got := consoleEval[string](p, `document.querySelector('th[data-col="type"]').getAttribute('aria-sort')`); got != "ascending" {
			t.Errorf("restored sort: Type aria-sort = %q", got)
		}
		p.screenshot("sources")
	})

	t.Run("pagination by cursor", func(t *testing.T) {
		p.t = t
		p.do("remove the environment filter", chromedp.Click(chromedp.CSS(`.chip[data-filter="environment:eq:prod"] button`)))
		p.wait("all rows", `document.getElementById('page-range').textContent === '1–12 of 12'`)
		p.do("ten rows per page", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('.pager select'); s.value = '10'; s.dispatchEvent(new Event('change')); })()`))
		p.wait("page 1", `document.getElementById('page-range').textContent === '1–10 of 12' && `+jsSourceNames+`.length === 10`)
		first := consoleEval[[]string](p, jsSourceNames)
		if want := []string{"Billing Worker", "HTTP API", "iOS App", "Web Shop"}; !slices.Equal(first[:4], want) {
			t.Errorf("page 1 starts %q, want %q", first[:4], want)
		}
		p.do("next page", chromedp.Click(chromedp.CSS("#page-next")))
		p.wait("page 2", `document.getElementById('page-range').textContent === '11–12 of 12' && `+jsSourceNames+`.length === 2 && document.getElementById('page-next').disabled`)
		second := consoleEval[[]string](p, jsSourceNames)
		all := append(slices.Clone(first), second...)
		slices.Sort(all)
		if len(slices.Compact(all)) != 12 {
			t.Errorf("pages 1 and 2 overlap: %q + %q", first, second)
		}
		p.do("previous page", chromedp.Click(chromedp.CSS("#page-prev")))
		p.wait("page 1 again", jsEquals(jsSourceNames, first)+` && document.getElementById('page-range').textContent === '1–10 of 12'`)
	})

	t.Run("destinations page: its five columns, sort and filter", func(t *testing.T) {
		p.t = t
		p.do("go to Destinations", chromedp.Click(chromedp.CSS(`a[data-nav="destinations"]`)))
		p.wait("destination rows", jsEquals(jsDestinationNames, []string{"Audit Hook", "Orders Hook"}))
		if got := consoleEval[[]string](p, jsHeaders); !slices.Equal(got, []string{"Name", "Status", "Created At", "Type", "Sources", "Category"}) {
			t.Errorf("destination headers = %q", got)
		}
		p.do("open the picker", chromedp.Click(chromedp.CSS("#column-picker-button")))
		p.wait("the picker", jsPickerIdle)
		if got := consoleEval[[]string](p, jsPickerLabels); !slices.Equal(got, []string{"Status", "Created At", "Type", "Sources", "Category"}) {
			t.Errorf("destination picker columns = %q", got)
		}
		p.do("close the picker", chromedp.KeyEvent(kb.Escape))
		p.do("sort by source", chromedp.Click(chromedp.CSS(`th[data-col="sources"] button.arrow`)), chromedp.Click(chromedp.CSS(`#column-menu button[data-sort="desc"]`)))
		p.wait("rows by source name descending", jsEquals(jsDestinationNames, []string{"Orders Hook", "Audit Hook"}))
		p.do("open the Status menu", chromedp.Click(chromedp.CSS(`th[data-col="status"] button.arrow`)))
		p.do("filter disabled",
			chromedp.SetValue(chromedp.CSS(`#column-menu select[name="value"]`), "disabled"),
			chromedp.Click(chromedp.CSS(`#column-menu button[type="submit"]`)))
		p.wait("disabled rows", jsEquals(jsDestinationNames, []string{"Audit Hook"}))
		p.screenshot("destinations")
		p.do("remove the filter", chromedp.Click(chromedp.CSS(`.chip button`)))
		p.wait("all destinations", jsEquals(jsDestinationNames, []string{"Orders Hook", "Audit Hook"}))
	})

	var created struct{ id, writeKey string }
	t.Run("source page: write key, destinations, warehouse, disable", func(t *testing.T) {
		p.t = t
		p.do("go to Sources", chromedp.Click(chromedp.CSS(`a[data-nav="sources"]`)))
		p.do("open Web Shop", chromedp.Click(chromedp.CSS(`#sources-table a[href="#/sources/`+webShop+`"]`)))
		p.wait("the source page", `document.querySelector('h1')?.textContent === 'Web Shop' && document.getElementById('source-destinations') !== null`)
		src := consoleREST(t, sy, http.MethodGet, "/api/v1/sources/"+webShop, nil)["source"].(map[string]any)
		key := src["writeKeys"].([]any)[0].(string)
		if got := consoleEval[[]string](p, `[...document.querySelectorAll('#write-keys code')].map(e => e.textContent)`); !slices.Equal(got, []string{key}) {
			t.Errorf("write keys shown = %q, want [%s]", got, key)
		}
		if got := consoleEval[string](p, `document.getElementById('source-destinations').innerText.replace(/\s+/g, ' ').trim()`); got != "Name Type Status Orders Hook webhook Enabled" {
			t.Errorf("connected destinations = %q", got)
		}
		p.do("disable the source", chromedp.Click(chromedp.CSS("#source-toggle")))
		p.wait("the disabled state", `document.querySelector('.toolbar .badge')?.textContent === 'Disabled' && document.getElementById('source-toggle').textContent === 'Enable source'`)
		if en := consoleREST(t, sy, http.MethodGet, "/api/v1/sources/"+webShop, nil)["source"].(map[string]any)["enabled"]; en != false {
			t.Errorf("REST enabled = %v after Disable, want false", en)
		}
		res := sy.request(t, http.MethodPost, "/v1/track", map[string]any{"userId": "u-1", "event": "Blocked"}, basicWriteKey(key))
		if res.Status != http.StatusForbidden {
			t.Errorf("track with the disabled source's key: status %d, want 403: %s", res.Status, res.Body)
		}
		p.goTo("#/sources/" + sy.Boot.SourceID)
		p.wait("its warehouse", `document.getElementById('source-warehouses')?.innerText.startsWith('Embedded DuckDB')`)
		p.do("rename it",
			chromedp.SetValue(chromedp.CSS("#src-name"), "HTTP API renamed"),
			chromedp.Click(chromedp.CSS(`#source-settings button[type="submit"]`)))
		p.wait("the saved settings", `document.querySelector('h1')?.textContent === 'HTTP API renamed' && document.querySelector('.note')?.textContent === 'Settings saved.'`)
		if name := consoleREST(t, sy, http.MethodGet, "/api/v1/sources/"+sy.Boot.SourceID, nil)["source"].(map[string]any)["name"]; name != "HTTP API renamed" {
			t.Errorf("REST name = %v after saving the settings form", name)
		}
		p.screenshot("source")
	})

	t.Run("create a source from the console", func(t *testing.T) {
		p.t = t
		p.goTo("#/sources/new")
		p.wait("the form", `document.getElementById('new-src-type')?.options.length === 8`)
		p.do("fill and submit",
			chromedp.SendKeys(chromedp.CSS("#new-src-name"), "Console Made"),
			chromedp.SetValue(chromedp.CSS("#new-src-type"), "node-js"),
			chromedp.SetValue(chromedp.CSS("#new-src-env"), "ENVIRONMENT_PROD"))
		p.screenshot("source-new")
		p.do("submit",
			chromedp.Click(chromedp.CSS(`#new-source button[type="submit"]`)))
		p.wait("the new source's page", `document.querySelector('h1')?.textContent === 'Console Made' && document.querySelector('#write-keys code') !== null`)
		created.writeKey = consoleEval[string](p, `document.querySelector('#write-keys code').textContent`)
		created.id = strings.TrimPrefix(consoleEval[string](p, `location.hash`), "#/sources/")
		src := consoleREST(t, sy, http.MethodGet, "/api/v1/sources/"+created.id, nil)["source"].(map[string]any)
		if src["type"] != "node-js" || src["environment"] != "ENVIRONMENT_PROD" || src["writeKeys"].([]any)[0] != created.writeKey {
			t.Errorf("created source = %v", src)
		}
		if note := consoleEval[string](p, `document.querySelector('.note').textContent`); note != "Source created. Write key: "+created.writeKey {
			t.Errorf("note = %q", note)
		}
	})

	t.Run("an event sent with curl appears in the live debugger, a rejected one with its reason", func(t *testing.T) {
		p.t = t
		if created.id == "" {
			t.Fatal("needs the source created by the previous step")
		}
		curl := func(body string) string {
			out, err := exec.CommandContext(t.Context(), "curl", "-s", "-u", created.writeKey+":",
				sy.baseURL()+"/v1/track", "-d", body).CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v: %s", err, out)
			}
			return string(out)
		}
		if out := curl(`{"userId":"u-live","event":"Live Debugged","messageId":"dbg-accepted-1"}`); out != `{"success":true}`+"\n" {
			t.Fatalf("curl track answered %q", out)
		}
		p.wait("the accepted event in the debugger",
			`document.querySelector('#event-debugger tr[data-message-id="dbg-accepted-1"][data-status="accepted"]')?.textContent.includes('Live Debugged') === true`)
		curl(`{"userId":"u-live"}`)
		p.wait("the rejected event with its reason",
			`[...document.querySelectorAll('#event-debugger tr[data-status="rejected"]')].some(r => r.textContent.includes('missing_event: track needs a non-blank event name'))`)
		if first := consoleEval[string](p, `document.querySelector('#event-debugger tbody tr').dataset.status`); first != "rejected" {
			t.Errorf("newest row status = %q, want the rejected event on top", first)
		}
		p.do("open the accepted event's payload", chromedp.Click(chromedp.CSS(`#event-debugger tr[data-message-id="dbg-accepted-1"]`)))
		if payload := consoleEval[string](p, `document.getElementById('debugger-payload').textContent`); !strings.Contains(payload, `"receivedAt"`) || !strings.Contains(payload, `"dbg-accepted-1"`) {
			t.Errorf("payload shown = %q, want the stored event", payload)
		}
		p.screenshot("source-debugger")
	})

	t.Run("connect a destination from the console; dead letter, error and redrive", func(t *testing.T) {
		p.t = t
		if created.id == "" {
			t.Fatal("no source was created by the previous step")
		}
		hook.accept.Store(false)
		p.do("open the connect form", chromedp.Click(chromedp.CSS(`a[href="#/destinations/new?source=`+created.id+`"]`)))
		p.wait("the form with the source chosen", `document.getElementById('new-dst-source')?.value === `+jsString(created.id)+` && document.getElementById('set-url') !== null`)
		p.do("submit a bad URL",
			chromedp.SendKeys(chromedp.CSS("#new-dst-name"), "Console Hook"),
			chromedp.SendKeys(chromedp.CSS("#set-url"), "not a url"),
			chromedp.Click(chromedp.CSS(`#new-destination button[type="submit"]`)))
		p.wait("the field error", `document.getElementById('set-url').getAttribute('aria-invalid') === 'true' && document.querySelector('#new-destination .alert').textContent.includes('CATALOG_URL_FORMAT')`)
		p.screenshot("destination-new")
		p.do("submit a good URL",
			chromedp.SetValue(chromedp.CSS("#set-url"), hook.srv.URL+"/console"),
			chromedp.Click(chromedp.CSS(`#new-destination button[type="submit"]`)))
		p.wait("the destination page", `document.querySelector('h1')?.textContent === 'Console Hook' && document.querySelector('#destination-settings [data-setting="url"]') !== null`)
		dstID := strings.TrimPrefix(consoleEval[string](p, `location.hash`), "#/destinations/")
		dst := consoleREST(t, sy, http.MethodGet, "/api/v1/destinations/"+dstID, nil)["destination"].(map[string]any)
		if dst["sourceId"] != created.id || dst["type"] != "webhook" || dst["enabled"] != true {
			t.Errorf("connected destination = %v", dst)
		}

		// The hook answers 400: the event is dead-lettered at once (reason rejected).
		res := sy.request(t, http.MethodPost, "/v1/track", map[string]any{"userId": "u-9", "event": "Console Test", "messageId": "console-msg-1"}, basicWriteKey(created.writeKey))
		if res.Status != http.StatusOK {
			t.Fatalf("track: status %d: %s", res.Status, res.Body)
		}
		deadline := time.Now().Add(deliveryWait)
		for {
			var dl struct {
				DeadLetters []json.RawMessage `json:"deadLetters"`
			}
			decodeJSON(t, sy.admin(t, http.MethodGet, "/api/v1/destinations/"+dstID+"/dead-letters", nil).Body, &dl)
			if len(dl.DeadLetters) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no dead letter after %v", deliveryWait)
			}
			time.Sleep(pollInterval)
		}
		p.do("refresh dead letters", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('button')].find(b => b.textContent === 'Refresh dead letters').click()`))
		p.wait("the dead letter", `document.querySelectorAll('#dead-letters tbody tr').length === 1`)
		if row := consoleEval[string](p, `document.querySelector('#dead-letters tbody tr').innerText`); !strings.Contains(row, "console-msg-1") || !strings.Contains(row, "rejected") || !strings.Contains(row, "400") {
			t.Errorf("dead letter row = %q", row)
		}
		p.do("refresh errors", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('button')].find(b => b.textContent === 'Refresh errors').click()`))
		p.wait("the latest error with request and response", `[...document.querySelectorAll('#delivery-errors details pre')].some(e => e.textContent.includes('rejected by the test'))`)
		p.wait("the per-minute chart of the last hour with the dead letter",
			`/Last hour by minute: \d+ delivered, 1 dead-lettered/.test(document.getElementById('delivery-minutes-chart')?.getAttribute('aria-label') || '')`)
		p.screenshot("destination")

		hook.accept.Store(true)
		p.do("redrive all", chromedp.Click(chromedp.CSS("#redrive-all")))
		p.wait("the redrive note", `document.querySelector('.note')?.textContent === 'Redrive: 1 re-sent.'`)
		deadline = time.Now().Add(deliveryWait)
		for !hook.got("console-msg-1") {
			if time.Now().After(deadline) {
				t.Fatalf("the redriven event did not reach the webhook within %v", deliveryWait)
			}
			time.Sleep(pollInterval)
		}
	})

	t.Run("sign out forgets the token", func(t *testing.T) {
		p.t = t
		p.do("sign out", chromedp.Click(chromedp.CSS("#signout")))
		p.wait("the sign-in form", `document.getElementById('token') !== null && document.getElementById('token-error').textContent === 'Signed out.'`)
		if got := consoleEval[string](p, `document.documentElement.outerHTML`); strings.Contains(got, token) {
			t.Error("the page still shows the token after sign-out")
		}
	})
}
