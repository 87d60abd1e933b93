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
// Phase 1 (batch): -workers connections send /v1/batch requests of
// -batch-size events of about -event-bytes bytes each, as fast as they are
// answered, for -duration. Phase 2 (track): single /v1/track calls at a
// fixed -rate requests/s (open loop) for -duration. All traffic goes to the
// given loopback address; both loops are bounded in time and count.
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
	"time"
)

type config struct {
	url, bin, writeKey   string
	pid                  int
	duration             time.Duration
	workers, batchSize   int
	eventBytes           int
	rate                 int
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
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 0}}
	fmt.Printf("loadgen: target %s, %d-s phases\n", c.url, int(c.duration.Seconds()))
	if !c.skipBatch {
		r := batchPhase(c, client)
		r.print(fmt.Sprintf("/v1/batch (%d events of ~%d B, %d workers)", c.batchSize, c.eventBytes, c.workers), c.batchSize)
	}
	if !c.skipTrack {
		r := trackPhase(c, client)
		r.print(fmt.Sprintf("/v1/track at %d req/s", c.rate), 1)
	}
	if c.pid > 0 {
		if hwm, rss, err := memory(c.pid); err == nil {
			fmt.Printf("ingest process %d: peak RSS (VmHWM) %.1f MiB, RSS now %.1f MiB\n", c.pid, float64(hwm)/1024, float64(rss)/1024)
		} else {
			fmt.Printf("ingest process %d: memory unknown: %v\n", c.pid, err)
		}
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

// event renders one track event of about size bytes.
func event(seq int64, size int) map[string]any {
	ev := map[string]any{
		"type": "track", "userId": "user-" + strconv.FormatInt(seq%10000, 10), "event": "Order Completed",
		"messageId":  fmt.Sprintf("lg-%d-%d", time.Now().UnixNano(), seq),
		"properties": map[string]any{"orderId": seq, "total": 42.5, "currency": "EUR", "pad": ""},
		"context":    map[string]any{"library": map[string]any{"name": "loadgen", "version": "1"}},
	}
	b, _ := json.Marshal(ev)
	if pad := size - len(b); pad > 0 {
		ev["properties"].(map[string]any)["pad"] = strings.Repeat("x", pad)
	}
	return ev
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

type collector struct {
	mu       sync.Mutex
	statuses map[int]int64
	lat      []time.Duration
	errors   atomic.Int64
	requests atomic.Int64
}

func (c *collector) send(client *http.Client, url, key string, body []byte) {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	d := time.Since(t0)
	c.requests.Add(1)
	status := 0
	if err != nil {
		c.errors.Add(1)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if status != 200 {
			c.errors.Add(1)
		}
	}
	c.mu.Lock()
	c.statuses[status]++
	c.lat = append(c.lat, d)
	c.mu.Unlock()
}

func (c *collector) report(elapsed time.Duration) report {
	return report{requests: c.requests.Load(), errors: c.errors.Load(), statuses: c.statuses, lat: c.lat, elapsed: elapsed}
}

func batchPhase(c config, client *http.Client) report {
	col := &collector{statuses: map[int]int64{}}
	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var seq atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && col.requests.Load() < c.maxRequests {
				batch := make([]map[string]any, c.batchSize)
				for i := range batch {
					batch[i] = event(seq.Add(1), c.eventBytes)
				}
				body, _ := json.Marshal(map[string]any{"batch": batch, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)})
				col.send(client, c.url+"/v1/batch", c.writeKey, body)
			}
		}()
	}
	wg.Wait()
	return col.report(time.Since(t0))
}

func trackPhase(c config, client *http.Client) report {
	col := &collector{statuses: map[int]int64{}}
	interval := time.Second / time.Duration(c.rate)
	total := min(int64(c.duration/interval), c.maxRequests)
	var seq atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := int64(0); i < total; i++ {
		// Open loop: request i is due at t0 + i*interval, whatever the
		// answers before it.
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		body, _ := json.Marshal(event(seq.Add(1), c.eventBytes))
		wg.Add(1)
		go func() {
			defer wg.Done()
			col.send(client, c.url+"/v1/track", c.writeKey, body)
		}()
	}
	wg.Wait()
	return col.report(time.Since(t0))
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
