// Command loadgen drives Switchyard's Tracking API and reports throughput,
// latency, errors and the ingest process's peak memory.
//
// It lives in the tools module (kept out of go.work, run with GOWORK=off)
// because it is a developer tool with no dependency beyond the standard
// library: it needs no workspace module and adds nothing to tools/go.mod.
//
//	GOWORK=off go -C tools run ./loadgen -bin ../bin/switchyard
//
// Without -url it starts `<bin> dev` on a fresh data dir and free ports
// and reads its peak RSS (VmHWM) from /proc at the end; with -url it
// drives a running server (pass -pid for its memory, -write-key for its key).
//
// Phase 1 (batch): -workers keep-alive connections send /v1/batch requests
// of -batch-size events of about -event-bytes bytes each, as fast as they
// are answered, for -duration. Phase 2 (track): single /v1/track calls at
// a fixed -rate requests/s (open loop: latency counts from the time a
// request was due, so a stalled server is not hidden) for -duration, sent
// by a fixed pool of -track-workers goroutines. All traffic goes to the
// given loopback address; both loops are bounded in time and count.
//
// The generator shares the CPU with the server, so it is kept cheap: the
// bodies are rendered once as templates and only each event's messageId
// digits are rewritten per request (every event stays unique, so dedupe
// and publishing do their full work); latencies go to per-worker slices.
//
// Memory: the server's peak RSS (VmHWM, whole process) and, sampled every
// 250 ms from its /metrics, the peak Go heap in use (go_memstats_heap_inuse_bytes):
// in `switchyard dev` the difference is mostly DuckDB's native memory and
// the runtime's free pages.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	url, bin, writeKey   string
	pid                  int
	duration             time.Duration
	workers, batchSize   int
	eventBytes           int
	rate, trackWorkers   int
	skipBatch, skipTrack bool
	maxRequests          int64
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "", "Switchyard base URL (default: start -bin)")
	flag.StringVar(&c.bin, "bin", "bin/switchyard", "switchyard binary to start when -url is empty")
	flag.StringVar(&c.writeKey, "write-key", "loadgen-write-key", "write key (set as SWITCHYARD_DEV_WRITE_KEY when starting the binary)")
	flag.IntVar(&c.pid, "pid", 0, "pid of a running server, for its peak RSS")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each phase")
	flag.IntVar(&c.workers, "workers", 8, "concurrent /v1/batch senders")
	flag.IntVar(&c.batchSize, "batch-size", 100, "events per /v1/batch request")
	flag.IntVar(&c.eventBytes, "event-bytes", 400, "approximate serialized size of one event")
	flag.IntVar(&c.rate, "rate", 2000, "single /v1/track requests per second")
	flag.IntVar(&c.trackWorkers, "track-workers", 32, "connections sending the /v1/track calls")
	flag.BoolVar(&c.skipBatch, "skip-batch", false, "skip the batch phase")
	flag.BoolVar(&c.skipTrack, "skip-track", false, "skip the track phase")
	flag.Int64Var(&c.maxRequests, "max-requests", 2_000_000, "hard bound on requests per phase")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.url == "" {
		stop, url, pid, err := start(c)
		if err != nil {
			return err
		}
		defer stop()
		c.url, c.pid = url, pid
	}
	if u := strings.TrimPrefix(strings.TrimPrefix(c.url, "http://"), "https://"); !strings.HasPrefix(u, "127.") && !strings.HasPrefix(u, "localhost") && !strings.HasPrefix(u, "[::1]") {
		return fmt.Errorf("refusing to load %s: loadgen only targets loopback addresses", c.url)
	}
	conns := max(c.workers, c.trackWorkers)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	fmt.Printf("loadgen: target %s, %d-s phases\n", c.url, int(c.duration.Seconds()))
	heap := sampleHeap(c.url)
	phase := func(title string, perReq int, run func() report) {
		s0, l0 := cpuTime(c.pid), selfCPU()
		r := run()
		r.print(title, perReq)
		s1, l1 := cpuTime(c.pid), selfCPU()
		secs := r.elapsed.Seconds()
		fmt.Printf("  CPU: server %.2f cores", (s1-s0).Seconds()/secs)
		if ok := r.statuses[200] * int64(perReq); ok > 0 && c.pid > 0 {
			fmt.Printf(" (%.1f µs per accepted event)", float64((s1-s0).Microseconds())/float64(ok))
		}
		fmt.Printf(", loadgen %.2f cores\n", (l1-l0).Seconds()/secs)
	}
	if !c.skipBatch {
		phase(fmt.Sprintf("/v1/batch (%d events of ~%d B, %d workers)", c.batchSize, c.eventBytes, c.workers), c.batchSize,
			func() report { return batchPhase(c, client, runID) })
	}
	if !c.skipTrack {
		phase(fmt.Sprintf("/v1/track at %d req/s (%d connections)", c.rate, c.trackWorkers), 1,
			func() report { return trackPhase(c, client, runID) })
	}
	peakHeap := heap.close()
	if c.pid > 0 {
		if hwm, rss, err := memory(c.pid); err == nil {
			fmt.Printf("server process %d: peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB, peak Go heap in use %.1f MiB\n", c.pid, float64(hwm)/1024, float64(rss)/1024, float64(peakHeap)/(1<<20))
		} else {
			fmt.Printf("server process %d: memory unknown: %v\n", c.pid, err)
		}
	} else if peakHeap > 0 {
		fmt.Printf("server: peak Go heap in use %.1f MiB\n", float64(peakHeap)/(1<<20))
	}
	if self, _, err := memory(os.Getpid()); err == nil {
		fmt.Printf("loadgen itself: peak RSS %.1f MiB\n", float64(self)/1024)
	}
	return nil
}

// start runs `bin dev` on a temp data dir and free loopback ports.
func start(c config) (stop func(), url string, pid int, err error) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return nil, "", 0, err
	}
	httpAddr, grpcAddr := freeAddr(), freeAddr()
	cmd := exec.Command(c.bin, "dev", "--data-dir", dir, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SWITCHYARD_DEV_WRITE_KEY="+c.writeKey, "SWITCHYARD_ADMIN_TOKEN=loadgen-admin-token-0123456789")
	logf, _ := os.Create(filepath.Join(dir, "switchyard.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, "", 0, fmt.Errorf("start %s: %w", c.bin, err)
	}
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}
	url = "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", 0, fmt.Errorf("%s not ready after 60 s", c.bin)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop, url, cmd.Process.Pid, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// body is a request body rendered once, whose messageId counters are
// rewritten in place for every request.
type body struct {
	b    []byte
	digs []int // offsets of the idDigits-wide counters
}

const idDigits = 12

// newBody renders n track events of about size bytes each, as a batch
// (batch true) or a single event, with fixed-width id counters.
func newBody(n, size int, batch bool, runID string) body {
	evs := make([]string, n)
	for i := range evs {
		ev := map[string]any{
			"type": "track", "userId": "user-" + strconv.Itoa(i%10000), "event": "Order Completed",
			"messageId":  "lg-" + runID + "-" + strings.Repeat("#", idDigits),
			"timestamp":  "2026-01-01T00:00:00.000Z",
			"properties": map[string]any{"orderId": i, "total": 42.5, "currency": "EUR", "pad": ""},
			"context":    map[string]any{"library": map[string]any{"name": "loadgen", "version": "1"}},
		}
		b, _ := json.Marshal(ev)
		if pad := size - len(b); pad > 0 {
			ev["properties"].(map[string]any)["pad"] = strings.Repeat("x", pad)
		}
		b, _ = json.Marshal(ev)
		evs[i] = string(b)
	}
	var text string
	if batch {
		text = `{"batch":[` + strings.Join(evs, ",") + `],"sentAt":"2026-01-01T00:00:01.000Z"}`
	} else {
		text = evs[0]
	}
	out := body{b: []byte(text)}
	slot := strings.Repeat("#", idDigits)
	for i := 0; ; {
		j := strings.Index(text[i:], slot)
		if j < 0 {
			break
		}
		out.digs = append(out.digs, i+j)
		i += j + idDigits
	}
	return out
}

// next writes fresh ids (seq, seq+1, …) into dst, a copy of the body.
func (b body) next(dst []byte, seq int64) []byte {
	dst = append(dst[:0], b.b...)
	for k, off := range b.digs {
		v := seq + int64(k)
		for d := off + idDigits - 1; d >= off; d-- {
			dst[d] = byte('0' + v%10)
			v /= 10
		}
	}
	return dst
}

type report struct {
	requests, errors int64
	statuses         map[int]int64
	lat              []time.Duration
	elapsed          time.Duration
}

func (r report) print(title string, perReq int) {
	slices.Sort(r.lat)
	pct := func(p float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
	}
	ok := r.statuses[200]
	fmt.Printf("%s:\n  requests %d (200: %d, errors %d, statuses %v) in %.1fs\n  %.0f req/s, %.0f events/s accepted\n  latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		title, r.requests, ok, r.errors, r.statuses, r.elapsed.Seconds(),
		float64(r.requests)/r.elapsed.Seconds(), float64(ok*int64(perReq))/r.elapsed.Seconds(),
		ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// worker sends requests on one keep-alive connection and keeps its own
// latencies and statuses.
type worker struct {
	statuses map[int]int64
	lat      []time.Duration
	errors   int64
	buf      []byte
	rd       bytes.Reader
}

func newWorker() *worker {
	return &worker{statuses: map[int]int64{}, lat: make([]time.Duration, 0, 1<<14)}
}

// send posts body; latency counts from due.
func (w *worker) send(client *http.Client, url, key string, body []byte, due time.Time) {
	w.rd.Reset(body)
	req, _ := http.NewRequest(http.MethodPost, url, &w.rd)
	req.ContentLength = int64(len(body))
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	status := 0
	if err != nil {
		w.errors++
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if status != 200 {
			w.errors++
		}
	}
	w.lat = append(w.lat, time.Since(due))
	w.statuses[status]++
}

func merge(ws []*worker, elapsed time.Duration) report {
	r := report{statuses: map[int]int64{}, elapsed: elapsed}
	for _, w := range ws {
		r.errors += w.errors
		r.lat = append(r.lat, w.lat...)
		for s, n := range w.statuses {
			r.statuses[s] += n
		}
	}
	r.requests = int64(len(r.lat))
	return r
}

func batchPhase(c config, client *http.Client, runID string) report {
	tmpl := newBody(c.batchSize, c.eventBytes, true, runID+"b")
	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var seq, sent atomic.Int64
	ws := make([]*worker, c.workers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ws {
		w := newWorker()
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= c.maxRequests {
				w.buf = tmpl.next(w.buf, seq.Add(int64(c.batchSize))-int64(c.batchSize))
				w.send(client, c.url+"/v1/batch", c.writeKey, w.buf, time.Now())
			}
		}()
	}
	wg.Wait()
	return merge(ws, time.Since(t0))
}

func trackPhase(c config, client *http.Client, runID string) report {
	tmpl := newBody(1, c.eventBytes, false, runID+"t")
	interval := time.Second / time.Duration(c.rate)
	total := min(int64(c.duration/interval), c.maxRequests)
	// Each due time goes to the next free worker; a request waiting for
	// a worker counts its wait in its latency.
	due := make(chan time.Time, 4096)
	ws := make([]*worker, c.trackWorkers)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for i := range ws {
		w := newWorker()
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range due {
				w.buf = tmpl.next(w.buf, seq.Add(1))
				w.send(client, c.url+"/v1/track", c.writeKey, w.buf, d)
			}
		}()
	}
	t0 := time.Now()
	for i := int64(0); i < total; i++ {
		at := t0.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	return merge(ws, time.Since(t0))
}

// heapSampler polls the server's /metrics for its Go heap in use and
// keeps the peak.
type heapSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap(url string) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(h.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if v := goHeap(client, url); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) close() int64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// goHeap reads go_memstats_heap_inuse_bytes from url/metrics (0 if absent).
func goHeap(client *http.Client, url string) int64 {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

// cpuTime is the user+system CPU time of pid so far (0 when unknown).
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): utime is
	// the 14th field of the line, stime the 15th, in clock ticks (100/s).
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory reads VmHWM (peak RSS) and VmRSS of pid, in KiB.
func memory(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = v
		case "VmRSS:":
			rss = v
		}
	}
	return hwm, rss, nil
}
