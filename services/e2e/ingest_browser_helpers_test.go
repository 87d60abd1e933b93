package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ajsChromiumPath is Debian's chromium (make test-deps installs it).
const ajsChromiumPath = "/usr/bin/chromium"

// analyticsNextDir is the installed @segment/analytics-next package; its
// dist/umd directory holds the browser bundles (standalone.js, index.js and
// the lazily loaded *.bundle.*.js chunks).
func analyticsNextDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(sdkDir, "node_modules", "@segment", "analytics-next")
	if _, err := os.Stat(filepath.Join(dir, "dist", "umd", "standalone.js")); err != nil {
		// node_modules predates the analytics-next pin: install the lock file.
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = sdkDir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", sdkDir, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "umd", "standalone.js")); err != nil {
		t.Fatalf("@segment/analytics-next is not installed: %v (run npm ci --prefix services/e2e/sdk)", err)
	}
	return dir
}

// ajsChromium starts a headless Debian chromium with a fresh profile and
// returns a browser context. Host names other than localhost resolve to
// nothing, so the page cannot reach the network beyond this machine.
func ajsChromium(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(ajsChromiumPath); err != nil {
		t.Fatalf("chromium is required at %s (make test-deps installs Debian's chromium): %v", ajsChromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ajsChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first call starts the browser, which lives as long as bctx: no
	// timeout on it (chromedp would stop the browser when it fires).
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// ajsRequest is one request a page made, as the DevTools protocol saw it.
type ajsRequest struct {
	Method string
	URL    string
	Status int64  // 0 when no response arrived
	Failed string // the failure (CORS, connection, …), "" when none
}

func (r ajsRequest) String() string {
	s := fmt.Sprintf("%s %s -> %d", r.Method, r.URL, r.Status)
	if r.Failed != "" {
		s += " FAILED " + r.Failed
	}
	return s
}

// ajsPageLog collects a tab's requests, console messages and uncaught
// exceptions.
type ajsPageLog struct {
	mu       sync.Mutex
	order    []network.RequestID
	requests map[network.RequestID]*ajsRequest
	console  []string
}

func (l *ajsPageLog) listen(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if _, ok := l.requests[e.RequestID]; !ok {
			l.order = append(l.order, e.RequestID)
		}
		l.requests[e.RequestID] = &ajsRequest{Method: e.Request.Method, URL: e.Request.URL}
	case *network.EventResponseReceived:
		if r := l.requests[e.RequestID]; r != nil {
			r.Status = e.Response.Status
		}
	case *network.EventLoadingFailed:
		if r := l.requests[e.RequestID]; r != nil {
			r.Failed = e.ErrorText
			if e.CorsErrorStatus != nil {
				r.Failed += " (CORS " + e.CorsErrorStatus.CorsError.String() + ")"
			}
			if e.BlockedReason != "" {
				r.Failed += " (blocked " + e.BlockedReason.String() + ")"
			}
		}
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		l.console = append(l.console, e.Type.String()+": "+strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		msg := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			msg += " " + e.ExceptionDetails.Exception.Description
		}
		l.console = append(l.console, "exception: "+msg)
	}
}

// snapshot returns the requests in the order they were made and the
// console lines.
func (l *ajsPageLog) snapshot() ([]ajsRequest, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ajsRequest, 0, len(l.order))
	for _, id := range l.order {
		out = append(out, *l.requests[id])
	}
	return out, append([]string(nil), l.console...)
}

// ajsPaths returns the distinct "METHOD path status" of the requests to
// origin, sorted, without the browser's own /favicon.ico request.
func ajsPaths(reqs []ajsRequest, origin string) []string {
	var out []string
	for _, r := range reqs {
		if !strings.HasPrefix(r.URL, origin+"/") || r.URL == origin+"/favicon.ico" {
			continue
		}
		u, err := url.Parse(r.URL)
		if err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %d", r.Method, u.Path, r.Status))
	}
	sort.Strings(out)
	// A repeated request (e.g. a second batch) counts once.
	return slices.Compact(out)
}

// ajsPageResult is what a test page reports in window.__result.
type ajsPageResult struct {
	OK          bool   `json:"ok"`
	Initialized bool   `json:"initialized"`
	Error       string `json:"error"`
}

// ajsOpenPage loads pageURL in a new tab of browser, waits until the page sets
// window.__result and then until wantRequests accepts the requests made so
// far (the SDK sends after the calls resolve when it batches). It returns
// the result and the tab's log.
func ajsOpenPage(t *testing.T, browser context.Context, pageURL string, wantRequests func([]ajsRequest) bool) (ajsPageResult, *ajsPageLog) {
	t.Helper()
	log := &ajsPageLog{requests: map[network.RequestID]*ajsRequest{}}
	tab, cancel := chromedp.NewContext(browser, chromedp.WithListener(log.listen))
	defer cancel()
	if err := chromedp.Do(tab); err != nil { // opens the tab (Network is enabled)
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancelRun := context.WithTimeout(tab, 30*time.Second)
	defer cancelRun()
	var res ajsPageResult
	_, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
	if err == nil {
		err = chromedp.Do(ctx, chromedp.Navigate(pageURL))
	}
	if err == nil {
		res, err = chromedp.Run(ctx, chromedp.Poll[ajsPageResult](`window.__result`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
	}
	if err == nil {
		for {
			reqs, _ := log.snapshot()
			if wantRequests(reqs) {
				break
			}
			if ctx.Err() != nil {
				err = errors.New("the expected requests were not made")
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err != nil {
		reqs, console := log.snapshot()
		t.Fatalf("page %s: %v\nresult: %+v\nrequests:\n  %s\nconsole:\n  %s", pageURL, err, res,
			ajsJoinRequests(reqs), strings.Join(console, "\n  "))
	}
	return res, log
}

func ajsJoinRequests(reqs []ajsRequest) string {
	s := make([]string, len(reqs))
	for i, r := range reqs {
		s[i] = r.String()
	}
	return strings.Join(s, "\n  ")
}
