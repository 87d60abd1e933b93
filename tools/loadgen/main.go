// Command loadgen drives Switchyard's Tracking API and reports throughput,
// latency, errors and the ingest process's peak memory.
//
// It lives in the tools module (kept out of go.work, run with GOWORK=off)
// because it is a developer tool with no dependency beyond the standard
// library: it needs no workspace module and adds nothing to tools/go.mod.
//
//	GOWORK=off go -C tools run ./loadgen -bin ../bin/switchyard
//
// Without -url it starts the binary on a fresh data dir and free ports and
// reads the processes' peak RSS (VmHWM) from /proc at the end; with -url it
// drives a running server (pass -pid for its memory, -write-key for its key).
// -shape says what it starts: all-in-one (default) is `<bin> dev`, every
// service in one process, so only the whole process can be measured;
// split is `<bin> dev --nats-addr …` (NATS server, Catalog, delivery, the
// warehouse) plus `<bin> ingest` against it, and the load goes to the
// ingest process, so Ingest's CPU and memory are reported on their own,
// beside the dev process's.
//
// Phase 1 (batch): -workers keep-alive connections send /v1/batch requests
// of -batch-size events of about -event-bytes bytes each, as fast as they
// are answered, for -duration. Then it waits (up to -drain-timeout) until
// the warehouse consumer has loaded every event (its pending and
// ack-pending messages, jetstream_consumer_pending and
// jetstream_consumer_ack_pending in the dev process's /metrics, are 0) and
// reports how long that took: otherwise phase 2 would measure the
// warehouse loading phase 1's backlog on the same CPU, not Ingest's
// latency. Phase 2 (track): single /v1/track calls at a fixed -rate
// requests/s (open loop: latency counts from the time a request was due,
// so a stalled server is not hidden) for -duration, sent by a fixed pool
// of -track-workers goroutines. All traffic goes to the given loopback
// address; both loops are bounded in time and count.
//
// The generator shares the CPU with the server, so it is kept cheap: the
// bodies are rendered once as templates and only each event's messageId
// digits are rewritten per request (every event stays unique, so dedupe
// and publishing do their full work); latencies go to per-worker slices.
//
// Each phase also prints the CPU of each process and of the rest of the
// machine (other processes and the kernel, from /proc/stat): a phase during
// which other processes took a large share of the cores measured the
// machine more than Switchyard. The track phase prints its p99 and max per
// second of due time, which tells a few stalls from a tail spread over the
// phase. -pprof-port serves the started processes' pprof, -log-dir keeps
// their logs (e.g. GODEBUG=gctrace=1 output).
//
// Memory: each process's peak RSS (VmHWM, whole process) and, sampled
// every 250 ms from its /metrics, its peak Go heap in use
// (go_memstats_heap_inuse_bytes): in `switchyard dev` the difference is
// mostly DuckDB's native memory and the runtime's free pages.
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
	"runtime"
	"runtime/debug"
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
	shape                string
	drainTimeout         time.Duration
	pprofPort            int
	logDir               string
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
	flag.StringVar(&c.shape, "shape", shapeAllInOne, "what to start without -url: all-in-one (<bin> dev) or split (<bin> dev with NATS on TCP, plus <bin> ingest, which gets the load)")
	flag.DurationVar(&c.drainTimeout, "drain-timeout", 120*time.Second, "how long to wait after the batch phase for the warehouse to load its backlog (0: do not wait)")
	flag.IntVar(&c.pprofPort, "pprof-port", 0, "serve pprof (SWITCHYARD_PPROF_ADDR) on 127.0.0.1:<port> in the process getting the load and on <port>+1 in the split shape's dev process (0: off)")
	flag.StringVar(&c.logDir, "log-dir", "", "keep the started processes' logs (stdout and stderr, e.g. GODEBUG=gctrace=1 output) in this directory (default: a temp dir removed at the end)")
	flag.Parse()
	if c.shape != shapeAllInOne && c.shape != shapeSplit {
		fmt.Fprintf(os.Stderr, "loadgen: -shape %q must be %s or %s\n", c.shape, shapeAllInOne, shapeSplit)
		os.Exit(2)
	}
	// The generator's own collections stop its senders too, and a request
	// due meanwhile counts the pause as the server's latency: collect 4×
	// less often (its live heap is the latencies, a few MiB).
	debug.SetGCPercent(400)
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// Shapes of what loadgen starts.
const (
	shapeAllInOne = "all-in-one"
	shapeSplit    = "split"
)

// proc is a server process loadgen measures: the driven one (the Tracking
// API at url) and, in the split shape, the dev process behind it.
type proc struct {
	name     string // "server" (the driven process) or "dev"
	url      string
	grpcAddr string
	pid      int
	heap     *heapSampler
}

func run(c config) error {
	driven := &proc{name: "server", url: c.url, pid: c.pid}
	var dev *proc // the split shape's dev process
	if c.url == "" {
		stop, d, v, err := start(c)
		if err != nil {
			return err
		}
		defer stop()
		driven, dev = d, v
		c.url = d.url
	}
	if u := strings.TrimPrefix(strings.TrimPrefix(c.url, "http://"), "https://"); !strings.HasPrefix(u, "127.") && !strings.HasPrefix(u, "localhost") && !strings.HasPrefix(u, "[::1]") {
		return fmt.Errorf("refusing to load %s: loadgen only targets loopback addresses", c.url)
	}
	// The warehouse consumer's backlog is in the /metrics of the process
	// running the warehouse.
	warehouse := driven
	conns := max(c.workers, c.trackWorkers)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}}
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	fmt.Printf("loadgen: target %s, %d-s phases\n", c.url, int(c.duration.Seconds()))
	procs := []*proc{driven}
	if dev != nil {
		warehouse = dev
		procs = append(procs, dev)
		fmt.Printf("loadgen: shape split: the load goes to `switchyard ingest` (pid %d); `switchyard dev` (pid %d, %s) runs the NATS server, Catalog, delivery and the warehouse\n",
			driven.pid, dev.pid, dev.url)
	}
	for _, p := range procs {
		p.heap = sampleHeap(p.url)
	}
	// phase runs one phase, prints its report and CPU, and returns its
	// accepted events.
	phase := func(title string, perReq int, run func() report) (accepted int64, elapsed time.Duration) {
		s0, d0, l0, m0 := cpuTime(driven.pid), cpuTime(dev.pidOrZero()), selfCPU(), machineCPU()
		r := run()
		r.print(title, perReq)
		s1, d1, l1, m1 := cpuTime(driven.pid), cpuTime(dev.pidOrZero()), selfCPU(), machineCPU()
		secs := r.elapsed.Seconds()
		ok := r.statuses[200] * int64(perReq)
		fmt.Printf("  CPU: server %.2f cores", (s1-s0).Seconds()/secs)
		if ok > 0 && driven.pid > 0 {
			fmt.Printf(" (%.1f µs per accepted event)", float64((s1-s0).Microseconds())/float64(ok))
		}
		fmt.Printf(", loadgen %.2f cores", (l1-l0).Seconds()/secs)
		if m1.busy > 0 {
			// What the rest of the machine took meanwhile: the figures of a
			// phase during which other processes took a large share of the
			// cores say more about the machine than about Switchyard.
			other := m1.busy - m0.busy - (s1 - s0) - (d1 - d0) - (l1 - l0)
			fmt.Printf(", other processes %.2f cores (steal %.2f) of %d", max(0, other.Seconds())/secs, (m1.steal-m0.steal).Seconds()/secs, runtime.NumCPU())
		}
		fmt.Println()
		if dev != nil {
			fmt.Printf("  CPU: dev process %.2f cores", (d1-d0).Seconds()/secs)
			if ok > 0 {
				fmt.Printf(" (%.1f µs per accepted event; both processes %.1f µs)", float64((d1-d0).Microseconds())/float64(ok),
					float64((s1-s0+d1-d0).Microseconds())/float64(ok))
			}
			fmt.Println()
		}
		return ok, r.elapsed
	}
	if !c.skipBatch {
		accepted, batchElapsed := phase(fmt.Sprintf("/v1/batch (%d events of ~%d B, %d workers)", c.batchSize, c.eventBytes, c.workers), c.batchSize,
			func() report { return batchPhase(c, client, runID) })
		if c.drainTimeout > 0 {
			waitDrain(warehouse.url, c.drainTimeout, accepted, batchElapsed)
		}
	}
	if !c.skipTrack {
		phase(fmt.Sprintf("/v1/track at %d req/s (%d connections)", c.rate, c.trackWorkers), 1,
			func() report { return trackPhase(c, client, runID) })
	}
	for _, p := range procs {
		peakHeap := p.heap.close()
		if p.pid > 0 {
			if hwm, rss, err := memory(p.pid); err == nil {
				fmt.Printf("%s process %d: peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB, peak Go heap in use %.1f MiB\n", p.name, p.pid, float64(hwm)/1024, float64(rss)/1024, float64(peakHeap)/(1<<20))
			} else {
				fmt.Printf("%s process %d: memory unknown: %v\n", p.name, p.pid, err)
			}
		} else if peakHeap > 0 {
			fmt.Printf("%s: peak Go heap in use %.1f MiB\n", p.name, float64(peakHeap)/(1<<20))
		}
	}
	if self, _, err := memory(os.Getpid()); err == nil {
		fmt.Printf("loadgen itself: peak RSS %.1f MiB\n", float64(self)/1024)
	}
	return nil
}

// pidOrZero is p's pid, 0 for no process.
func (p *proc) pidOrZero() int {
	if p == nil {
		return 0
	}
	return p.pid
}

// start runs the processes of c.shape on a temp data dir and free loopback
// ports and waits until each is ready: `bin dev` alone (driven, dev nil),
// or `bin dev` with its NATS server on TCP and `bin ingest` against it
// (driven is the ingest process).
func start(c config) (stop func(), driven, dev *proc, err error) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return nil, nil, nil, err
	}
	var cmds []*exec.Cmd
	stop = func() {
		// The ingest process first: it publishes to dev's NATS server.
		for i := len(cmds) - 1; i >= 0; i-- {
			stopCmd(cmds[i])
		}
		_ = os.RemoveAll(dir)
	}
	launch := func(name string, args ...string) (*proc, error) {
		httpAddr, grpcAddr := freeAddr(), freeAddr()
		args = append(args, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--log-level", "warn")
		cmd := exec.Command(c.bin, args...)
		cmd.Env = append(os.Environ(), "SWITCHYARD_DEV_WRITE_KEY="+c.writeKey, "SWITCHYARD_ADMIN_TOKEN=loadgen-admin-token-0123456789")
		if c.pprofPort > 0 {
			port := c.pprofPort
			if name == "dev" {
				port++
			}
			cmd.Env = append(cmd.Env, fmt.Sprintf("SWITCHYARD_PPROF_ADDR=127.0.0.1:%d", port))
		}
		logPath := filepath.Join(dir, name+".log")
		if c.logDir != "" {
			logPath = filepath.Join(c.logDir, name+".log")
		}
		logf, _ := os.Create(logPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s %s: %w", c.bin, args[0], err)
		}
		cmds = append(cmds, cmd)
		p := &proc{name: name, url: "http://" + httpAddr, grpcAddr: grpcAddr, pid: cmd.Process.Pid}
		if err := waitReady(p.url, 60*time.Second); err != nil {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s %s: %w; its log ends:\n%s", c.bin, args[0], err, tail(log, 2000))
		}
		return p, nil
	}
	devDir := filepath.Join(dir, "dev")
	if c.shape != shapeSplit {
		driven, err = launch("server", "dev", "--data-dir", devDir)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		return stop, driven, nil, nil
	}
	natsAddr := freeAddr()
	dev, err = launch("dev", "dev", "--data-dir", devDir, "--nats-addr", natsAddr)
	if err == nil {
		driven, err = launch("server", "ingest", "--data-dir", filepath.Join(dir, "ingest"),
			"--nats-url", "nats://"+natsAddr, "--catalog-addr", dev.grpcAddr)
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return stop, driven, dev, nil
}

// stopCmd interrupts cmd and waits for it (20 s, then kills it).
func stopCmd(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitReady polls url/readyz until it answers 200.
func waitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail is the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitDrain waits until the warehouse consumers of the process at url
// have no pending or unacknowledged message, and prints how long that
// took and the warehouse's load rate over the batch phase and the drain.
func waitDrain(url string, timeout time.Duration, accepted int64, phase time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	t0 := time.Now()
	first, found := warehouseBacklog(client, url)
	if !found {
		fmt.Printf("warehouse drain: no warehouse consumer in %s/metrics; not waiting\n", url)
		return
	}
	left := first
	for left > 0 && time.Since(t0) < timeout {
		time.Sleep(250 * time.Millisecond)
		left, _ = warehouseBacklog(client, url)
	}
	took := time.Since(t0)
	if left > 0 {
		fmt.Printf("warehouse drain: %d messages still pending after %.1fs (timeout; -drain-timeout %v); going on\n", left, took.Seconds(), timeout)
		return
	}
	fmt.Printf("warehouse drain: %d messages pending after the batch phase, loaded in %.1fs; warehouse load rate %.0f events/s (%d events over the %.1f-s phase and the drain)\n",
		first, took.Seconds(), float64(accepted)/(phase+took).Seconds(), accepted, phase.Seconds())
}

// warehouseBacklog sums jetstream_consumer_pending and
// jetstream_consumer_ack_pending over the consumers named warehouse-…
// in url/metrics; found is false when there is none.
func warehouseBacklog(client *http.Client, url string) (n int64, found bool) {
	resp, err := client.Get(url + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "jetstream_consumer_pending{") && !strings.HasPrefix(line, "jetstream_consumer_ack_pending{") {
			continue
		}
		if !strings.Contains(line, `consumer="warehouse-`) {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			continue
		}
		n += int64(f)
		found = true
	}
	return n, found
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
	// timeline is the latency percentiles per second of due time (track
	// phase only): whether a slow tail is spread over the phase or comes
	// from a few stalls.
	timeline []window
}

// window holds the latencies of the requests due within one second.
type window struct{ lat []time.Duration }

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
	if len(r.timeline) > 0 {
		fmt.Printf("  per second (p99/max ms):")
		for _, w := range r.timeline {
			slices.Sort(w.lat)
			if len(w.lat) == 0 {
				fmt.Printf(" -")
				continue
			}
			fmt.Printf(" %.1f/%.0f", ms(w.lat[min(len(w.lat)-1, len(w.lat)*99/100)]), ms(w.lat[len(w.lat)-1]))
		}
		fmt.Println()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// worker sends requests on one keep-alive connection and keeps its own
// latencies and statuses.
type worker struct {
	statuses map[int]int64
	lat      []time.Duration
	dues     []time.Time // when each request was due (track phase: the timeline)
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
	if w.dues != nil {
		w.dues = append(w.dues, due)
	}
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

// withTimeline adds r's per-second windows (by due time from t0).
func (r report) withTimeline(ws []*worker, t0 time.Time) report {
	for _, w := range ws {
		for i, d := range w.dues {
			s := int(d.Sub(t0) / time.Second)
			for len(r.timeline) <= s {
				r.timeline = append(r.timeline, window{})
			}
			r.timeline[s].lat = append(r.timeline[s].lat, w.lat[i])
		}
	}
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
		w.dues = make([]time.Time, 0, 1<<14)
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
	return merge(ws, time.Since(t0)).withTimeline(ws, t0)
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

// machineTimes are the machine's CPU times so far, over all cores
// (/proc/stat): busy (user, nice, system, irq, softirq) and steal (taken by
// the hypervisor). Zero when unknown.
type machineTimes struct{ busy, steal time.Duration }

func machineCPU() machineTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineTimes{}
	}
	tick := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * 10 * time.Millisecond // USER_HZ is 100
	}
	return machineTimes{busy: tick(1) + tick(2) + tick(3) + tick(6) + tick(7), steal: tick(8)}
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
