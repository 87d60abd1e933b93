package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// kill sends SIGKILL to the switchyard process and waits for it to die: no shutdown runs, so
// in-flight loads are cut at any point.
func (s *switchyard) kill(t *testing.T) {
	t.Helper()
	if s.cmd == nil {
		t.Fatal("kill: switchyard is not running")
	}
	fmt.Fprintf(s.logs, "=== e2e: sending SIGKILL\n")
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill switchyard: %v", err)
	}
	<-s.done
	s.cmd = nil
}

// crashSender posts batches of track events until stopped, remembering which messageIds the
// Tracking API acknowledged (200) and which it was sent at all.
type crashSender struct {
	mu       sync.Mutex
	acked    []string
	sent     map[string]bool
	next     int
	prefix   string
	stopped  chan struct{}
	finished chan struct{}
}

const crashBatch = 25

func (c *crashSender) run(s *switchyard, limit int) {
	defer close(c.finished)
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-c.stopped:
			return
		default:
		}
		c.mu.Lock()
		if c.next >= limit {
			c.mu.Unlock()
			return
		}
		var ids []string
		var batch []map[string]any
		for range crashBatch {
			id := fmt.Sprintf("%s%05d", c.prefix, c.next)
			c.next++
			c.sent[id] = true
			ids = append(ids, id)
			batch = append(batch, map[string]any{"type": "track", "messageId": id, "userId": "u-crash", "event": "Crash Test", "properties": map[string]any{"n": c.next}})
		}
		c.mu.Unlock()
		raw, _ := json.Marshal(map[string]any{"batch": batch})
		req, _ := http.NewRequest(http.MethodPost, s.baseURL()+"/v1/batch", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(s.Boot.WriteKey, "")
		resp, err := client.Do(req)
		if err != nil {
			continue // the process is down: these ids were not acknowledged
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			c.mu.Lock()
			c.acked = append(c.acked, ids...)
			c.mu.Unlock()
		}
	}
}

func (c *crashSender) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

// TestWarehouseCrashExactlyOnce kills the process with SIGKILL while it is loading, restarts it on
// the same data dir, and checks that every event the Tracking API acknowledged is in the warehouse
// exactly once (ids sent but not acknowledged may be there, at most once).
func TestWarehouseCrashExactlyOnce(t *testing.T) {
	s := startSwitchyard(t)
	const table = "http_api.crash_test"
	countRows := func() int {
		res, qr := s.tryQuery(t, "select count(*) as n from "+table)
		if res.Status != http.StatusOK || len(qr.Rows) != 1 {
			return 0
		}
		return int(asFloat(t, qr.Rows[0]["n"]))
	}

	for round := range 2 {
		prefix := fmt.Sprintf("crash-r%d-", round)
		c := &crashSender{sent: map[string]bool{}, prefix: prefix, stopped: make(chan struct{}), finished: make(chan struct{})}
		go c.run(s, 3000)
		// Kill once loads are under way: some rows visible, more arriving.
		deadline := time.Now().Add(warehouseWait)
		for countRows() < 200*(round+1) || c.ackedCount() < 600 {
			if time.Now().After(deadline) {
				close(c.stopped)
				<-c.finished
				t.Fatalf("round %d: loads did not start: %d rows, %d acked", round, countRows(), c.ackedCount())
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.kill(t)
		close(c.stopped)
		<-c.finished
		s.start(t)

		c.mu.Lock()
		acked, sent := c.acked, c.sent
		c.mu.Unlock()
		t.Logf("round %d: %d events acknowledged before the kill", round, len(acked))
		// Loads continue after the restart until every acknowledged id is there.
		var counts map[string]int
		deadline = time.Now().Add(warehouseWait)
		for {
			counts = s.crashIDCounts(t, table, prefix)
			if hasAll(counts, acked) || time.Now().After(deadline) {
				break
			}
			time.Sleep(pollInterval)
		}
		for _, id := range acked {
			if counts[id] != 1 {
				t.Errorf("round %d: acknowledged id %s appears %d times, want exactly 1", round, id, counts[id])
			}
		}
		for id, n := range counts {
			if n != 1 {
				t.Errorf("round %d: id %s appears %d times", round, id, n)
			}
			if strings.HasPrefix(id, prefix) && !sent[id] {
				t.Errorf("round %d: id %s was never sent", round, id)
			}
		}
	}
}

// crashIDCounts returns how often each id with prefix is in table, reading ordered pages of 1000
// (the query endpoint's default row limit).
func (s *switchyard) crashIDCounts(t *testing.T, table, prefix string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	last := prefix
	for {
		sql := fmt.Sprintf("select id, count(*) as n from %s where id > '%s' and id like '%s%%' group by id order by id limit 1000", table, last, prefix)
		res, qr := s.tryQuery(t, sql)
		if res.Status != http.StatusOK {
			return counts // the table does not exist yet
		}
		page := idCounts(t, qr)
		for id, n := range page {
			counts[id] = n
			last = max(last, id)
		}
		if len(page) < 1000 {
			return counts
		}
	}
}
