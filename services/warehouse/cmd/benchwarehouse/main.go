// Command benchwarehouse measures warehouse loading: rows/s into DuckDB and PostgreSQL through the
// loader (bulk path and multi-row INSERT) and through the real consumer path, PostgreSQL's ratio
// to a plain COPY of the same rows into empty tables in the same run, and time-to-visible at a
// steady event rate through the real pipeline (embedded NATS, durable consumer, micro-batches).
// Events are published as Ingest stores them: packs of the events of one request (-pack).
// Throughputs are medians of several runs (-runs). `make bench-warehouse` runs it.
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
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
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
	batch := flag.Int("batch", pipeline.BatchSize, "events per load when caught up (the pipeline's batch_size)")
	rate := flag.Int("rate", 10000, "events/s for the time-to-visible run")
	seconds := flag.Int("seconds", 10, "duration of the time-to-visible run")
	multiRow := flag.Bool("multirow", false, "also measure the multi-row INSERT path (slow on DuckDB)")
	duckDB := flag.Bool("duckdb", true, "also measure DuckDB (-duckdb=false: PostgreSQL only)")
	pack := flag.Int("pack", 100, "events per published message on the consumer path (as Ingest packs a request's events); 1 publishes single-event messages")
	runs := flag.Int("runs", 3, "runs of each throughput measurement (the median is printed)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchwarehouse:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *pack < 1 || *runs < 1 {
		fmt.Fprintln(os.Stderr, "benchwarehouse: -pack and -runs must be at least 1")
		os.Exit(2)
	}
	if err := run(config{events: *events, batch: *batch, rate: *rate, seconds: *seconds, multiRow: *multiRow, duckDB: *duckDB, pack: *pack, runs: *runs}); err != nil {
		fmt.Fprintln(os.Stderr, "benchwarehouse:", err)
		pprof.StopCPUProfile()
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

// config is the benchmark's flags.
type config struct {
	events, batch, rate, seconds int
	multiRow, duckDB             bool
	pack, runs                   int
}

// loadAverage returns the 1-minute load average ("?" when unknown): the machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func run(cfg config) error {
	n, batch := cfg.events, cfg.batch
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
	pgConn, err := sqlengine.OpenPostgres(pgURL)
	if err != nil {
		return err
	}
	defer pgConn.Close()

	evs := make([][]byte, n)
	for i := range evs {
		evs[i] = event("bench", i)
	}
	backlog := pipeline.Settings{BatchSize: batch}.BacklogBatch()
	startLoad := loadAverage()
	fmt.Printf("warehouse load benchmark: %d track events (2 rows each: tracks + order_completed); consumer path: %s\n", n, packing(cfg.pack))
	fmt.Printf("throughput (rows/s, JSON events in → committed rows; each loader run into an empty schema):\n")

	// Every measurement runs once per round, and the rounds run one after the other: each round
	// measures plain COPY and the loads back to back, so a busy moment of the (shared) machine
	// weighs on both sides of the ratio. Each figure is the median of its runs.
	type measure struct {
		engine, label, note string
		rows                int
		run                 func(run int) (float64, error)
		rates               []float64
	}
	var measures []*measure
	add := func(m *measure) *measure {
		measures = append(measures, m)
		return m
	}
	plain := add(&measure{engine: "postgres", label: "plain COPY", rows: 2 * n,
		note: "same rows, prepared, into empty keyless tables, one transaction",
		run:  func(run int) (float64, error) { return plainCopy(ctx, pgURL, evs, run, false) }})
	add(&measure{engine: "postgres", label: "plain COPY, keyed tables", rows: 2 * n,
		note: "as above with id PRIMARY KEY: one connection's ceiling for an exactly-once load",
		run:  func(run int) (float64, error) { return plainCopy(ctx, pgURL, evs, run, true) }})

	type engine struct {
		name string
		open func(tag string) (sqlengine.Engine, error)
	}
	duck := engine{"duckdb", func(tag string) (sqlengine.Engine, error) {
		return sqlengine.OpenDuckDB(filepath.Join(tmp, tag+".duckdb"))
	}}
	pg := engine{"postgres", func(string) (sqlengine.Engine, error) { return sqlengine.OpenPostgres(pgURL) }}
	type loadCase struct {
		e        engine
		batch    int
		multiRow bool
	}
	cases := []loadCase{{duck, batch, false}, {duck, backlog, false}, {pg, batch, false}, {pg, backlog, false}}
	if cfg.multiRow {
		cases = append(cases, loadCase{duck, batch, true}, loadCase{pg, batch, true})
	}
	var pgLoads []*measure
	for i, c := range cases {
		if c.e.name == "duckdb" && !cfg.duckDB {
			continue
		}
		in := evs
		label := fmt.Sprintf("loader, %d events/load", c.batch)
		if c.multiRow {
			in = evs[:min(len(evs), 10000)] // slow on DuckDB: a smaller sample is enough to compare
			label = "loader, multi-row INSERT"
		}
		m := add(&measure{engine: c.e.name, label: label, rows: 2 * len(in), run: func(run int) (float64, error) {
			e, err := c.e.open(fmt.Sprintf("load%d_%d", i, run))
			if err != nil {
				return 0, err
			}
			defer e.Close()
			l := loader.NewWithOptions(e, nil, loader.Options{MultiRowInsert: c.multiRow})
			schemaName := fmt.Sprintf("bench_%d_%d", i, run)
			if err := e.DB().PingContext(ctx); err != nil { // connected before the clock starts, as plain COPY
				return 0, err
			}
			start := time.Now()
			var rows int64
			for chunk := range slices.Chunk(in, c.batch) {
				res, err := l.Load(ctx, schemaName, chunk)
				if err != nil {
					return 0, fmt.Errorf("%s %s: %w", c.e.name, label, err)
				}
				for _, v := range res.Rows {
					rows += v
				}
			}
			el := time.Since(start)
			if rows != int64(2*len(in)) {
				return 0, fmt.Errorf("%s %s: %d rows loaded, want %d", c.e.name, label, rows, 2*len(in))
			}
			if err := dropSchema(ctx, e, schemaName); err != nil {
				return 0, err
			}
			return float64(rows) / el.Seconds(), nil
		}})
		if c.e.name == "postgres" && !c.multiRow {
			pgLoads = append(pgLoads, m)
		}
	}
	var pgDrain *measure
	for _, c := range []struct {
		name string
		typ  catalogv1.WarehouseType
		set  func(run int) map[string]any
	}{
		{"duckdb", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, func(run int) map[string]any {
			return map[string]any{"path": filepath.Join(tmp, fmt.Sprintf("drain%d.duckdb", run)), "batch_size": batch}
		}},
		{"postgres", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, func(int) map[string]any { return map[string]any{"dsn": pgURL, "batch_size": batch} }},
	} {
		if c.name == "duckdb" && !cfg.duckDB {
			continue
		}
		m := add(&measure{engine: c.name, label: "consumer draining a backlog", rows: 2 * n, run: func(run int) (float64, error) {
			store := filepath.Join(tmp, fmt.Sprintf("nats-drain-%s-%d", c.name, run))
			r, err := drain(ctx, store, c.name, fmt.Sprintf("drain%d", run), c.typ, c.set(run), evs, cfg.pack)
			if err != nil {
				return 0, fmt.Errorf("drain %s: %w", c.name, err)
			}
			return r, nil
		}})
		if c.name == "postgres" {
			pgDrain = m
		}
	}

	for run := range cfg.runs {
		for _, m := range measures {
			// Each measurement starts with no dirty pages left by the previous one to write out.
			if _, err := pgConn.DB().ExecContext(ctx, "CHECKPOINT"); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			r, err := m.run(run)
			if err != nil {
				return err
			}
			m.rates = append(m.rates, r)
		}
	}
	median := func(m *measure) float64 {
		r := slices.Sorted(slices.Values(m.rates))
		return r[len(r)/2]
	}
	for _, m := range measures {
		r := slices.Sorted(slices.Values(m.rates))
		note := ""
		if m.note != "" {
			note = "; " + m.note
		}
		fmt.Printf("  %-9s %-30s %9.0f rows/s  (%d rows; median of %d: %.0f … %.0f%s)\n",
			m.engine, m.label, median(m), m.rows, len(r), r[0], r[len(r)-1], note)
	}
	fmt.Printf("postgres load / plain COPY (goal ≥ 0.50):\n")
	for _, m := range append(pgLoads, pgDrain) {
		fmt.Printf("  %-40s %.2f\n", m.label, median(m)/median(plain))
	}

	fmt.Printf("time-to-visible at %d events/s for %d s through the consumer (embedded NATS, %s, batch_size %d, batch_wait 500 ms; goal p99 ≤ 5 s):\n",
		cfg.rate, cfg.seconds, packing(cfg.pack), batch)
	for _, c := range []struct {
		name string
		typ  catalogv1.WarehouseType
		set  map[string]any
	}{
		{"duckdb", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(tmp, "ttv.duckdb"), "batch_size": batch}},
		{"postgres", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": pgURL, "batch_size": batch}},
	} {
		if c.name == "duckdb" && !cfg.duckDB {
			continue
		}
		if err := timeToVisible(ctx, filepath.Join(tmp, "nats-"+c.name), c.name, c.typ, c.set, cfg.rate, cfg.seconds, cfg.pack); err != nil {
			return fmt.Errorf("time-to-visible %s: %w", c.name, err)
		}
	}
	fmt.Printf("load average (1 min): %s at the start, %s at the end\n", startLoad, loadAverage())
	return nil
}

// packing describes how events are published.
func packing(pack int) string {
	if pack == 1 {
		return "one event per message"
	}
	return fmt.Sprintf("packs of %d events", pack)
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
func plainCopy(ctx context.Context, url string, evs [][]byte, run int, keyed bool) (float64, error) {
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
			for _, c := range r.Columns {
				kinds[c.Name] = c.Value.Kind()
			}
		}
		cols := slices.Sorted(maps.Keys(kinds))
		var defs []string
		for _, c := range cols {
			defs = append(defs, d.QuoteIdent(c)+" "+d.ColumnType(kinds[c]))
		}
		name := fmt.Sprintf("plain%d_%v_%s", run, keyed, table)
		if keyed {
			defs[slices.Index(cols, "id")] += " PRIMARY KEY"
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", d.QuoteIdent(name), strings.Join(defs, ", "))); err != nil {
			return 0, err
		}
		p := prepared{table: name, cols: cols}
		for _, r := range rows {
			vals := make([]any, len(cols))
			for i, c := range cols {
				if v, ok := r.Get(c); ok {
					vals[i] = v.Any()
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
	el := time.Since(start)
	for _, p := range work { // no autovacuum work left behind for the next measurement
		if _, err := conn.Exec(ctx, "DROP TABLE "+d.QuoteIdent(p.table)); err != nil {
			return 0, err
		}
	}
	return float64(total) / el.Seconds(), nil
}

// bench is one warehouse loading from an embedded NATS through the real pipeline.
type bench struct {
	conn    *jetstream.Conn
	mgr     *pipeline.Manager
	whID    string
	eng     sqlengine.Engine
	subject string
	schema  string
	start   func() error
	stop    func()
}

// startPipeline starts an embedded NATS with the streams and a pipeline running one warehouse of
// the given type, connected to one source whose slug (and schema) is slug.
func startPipeline(ctx context.Context, storeDir, name, slug string, typ catalogv1.WarehouseType, settings map[string]any) (*bench, error) {
	srv, err := natsembed.Start(natsembed.Options{StoreDir: storeDir})
	if err != nil {
		return nil, err
	}
	conn, err := jetstream.ConnectInProcess(srv, "bench")
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	stopNATS := func() {
		_ = conn.Close(context.Background())
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if err := streams.Ensure(ctx, conn.JS, streams.DefaultOptions); err != nil {
		stopNATS()
		return nil, err
	}
	st, err := structpb.NewStruct(settings)
	if err != nil {
		stopNATS()
		return nil, err
	}
	wh := &catalogv1.Warehouse{Id: "bench-" + name, WorkspaceId: "ws", Type: typ, Settings: st, SourceIds: []string{"src"}, Enabled: true}
	mgr := pipeline.New(conn.JS, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	b := &bench{conn: conn, mgr: mgr, whID: wh.GetId(), subject: streams.EventsSubject("ws", "src"), schema: slug}
	var started bool
	var cancel context.CancelFunc = func() {}
	b.stop = func() {
		cancel()
		if started {
			mgr.Wait()
		}
		stopNATS()
	}
	b.start = func() error {
		rctx, c := context.WithCancel(ctx)
		cancel, started = c, true
		mgr.Reconcile(rctx, []*catalogv1.ConfigSnapshot{{
			Workspace: &catalogv1.Workspace{Id: "ws"}, Sources: []*catalogv1.Source{{Id: "src", Slug: slug}}, Warehouses: []*catalogv1.Warehouse{wh},
		}})
		eng, err := mgr.Engine(wh.GetId())
		b.eng = eng
		return err
	}
	return b, nil
}

// publish sends evs, whose messageIds are ids, to the source's subject as Ingest stores a request's
// events: packs of at most pack events (a single event as a single-event message), without
// waiting for the acks.
func (b *bench) publish(ctx context.Context, ids []string, evs [][]byte, pack int) error {
	for start := 0; start < len(evs); start += pack {
		end := min(start+pack, len(evs))
		msg := jetstream.NewMsg(ctx, b.subject, evs[start], jetstream.Headers{MsgID: ids[start], Workspace: "ws", Source: "src", EventType: "track"})
		if end-start > 1 {
			packed := make([]jetstream.PackedEvent, 0, end-start)
			for i := start; i < end; i++ {
				packed = append(packed, jetstream.PackedEvent{MessageID: ids[i], Type: "track", JSON: evs[i]})
			}
			msg = jetstream.PackMsg(b.subject, jetstream.Headers{Workspace: "ws", Source: "src"}, nil, packed)
		}
		if _, err := b.conn.JS.PublishMsgAsync(msg); err != nil {
			return err
		}
	}
	return nil
}

// committed returns how many event-table rows the warehouse's sync history says were committed:
// a cheap way to follow a load without querying the database that does it.
func (b *bench) committed(ctx context.Context) int64 {
	syncs, err := b.mgr.Syncs(ctx, b.whID)
	if err != nil {
		return 0
	}
	var n int64
	for _, s := range syncs {
		n += s.RowsPerTable[b.schema+".order_completed"]
	}
	return n
}

// count returns how many rows the event table holds (-1 when it cannot be read yet).
func (b *bench) count(ctx context.Context) int64 {
	var c int64
	q := "SELECT count(*) FROM " + sqlengine.QualifiedName(b.eng.Dialect(), b.schema, "order_completed")
	if err := b.eng.DB().QueryRowContext(ctx, q).Scan(&c); err != nil {
		return -1
	}
	return c
}

// drain publishes evs (in packs of pack events) into the stream with the warehouse stopped, then
// starts it and measures how long the consumer takes until every event's rows are committed in
// the schema slug: the load throughput of the real consumer path (fetch, unpack, adaptive
// batches, load, ack) under a backlog. It returns rows/s.
func drain(ctx context.Context, storeDir, name, slug string, typ catalogv1.WarehouseType, settings map[string]any, evs [][]byte, pack int) (float64, error) {
	b, err := startPipeline(ctx, storeDir, name, slug, typ, settings)
	if err != nil {
		return 0, err
	}
	defer b.stop()
	ids := make([]string, len(evs))
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%08d", i) // the messageIds of event("bench", i)
	}
	if err := b.publish(ctx, ids, evs, pack); err != nil {
		return 0, err
	}
	select {
	case <-b.conn.JS.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		return 0, errors.New("publish acks timed out")
	}
	start := time.Now()
	if err := b.start(); err != nil {
		return 0, err
	}
	// The sync history counts rows once their transaction committed; polling count(*) on the
	// table being loaded would take the database's CPU from the load it measures.
	deadline := start.Add(5 * time.Minute)
	for b.committed(ctx) < int64(len(evs)) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d events loaded after 5 minutes", b.committed(ctx), len(evs))
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	if n := b.count(ctx); n != int64(len(evs)) {
		return 0, fmt.Errorf("the history counts %d events but the table holds %d", len(evs), n)
	}
	if err := dropSchema(ctx, b.eng, b.schema); err != nil {
		return 0, err
	}
	return float64(2*len(evs)) / el.Seconds(), nil
}

// dropSchema drops a measurement's schema once it is measured, so PostgreSQL's autovacuum has
// no work left from it while the next measurement runs.
func dropSchema(ctx context.Context, e sqlengine.Engine, schemaName string) error {
	if e.Dialect().Name() != "postgres" {
		return nil
	}
	_, err := e.DB().ExecContext(ctx, "DROP SCHEMA "+sqlengine.QualifiedSchema(e.Dialect(), schemaName)+" CASCADE")
	return err
}

// timeToVisible publishes rate events/s for the given seconds into an embedded NATS and measures,
// per event, the time from its publish to the first poll (every 25 ms) that sees it in the
// warehouse. Events load in stream order, so "count(*) ≥ k" means event k is visible.
func timeToVisible(ctx context.Context, storeDir, name string, typ catalogv1.WarehouseType, settings map[string]any, rate, seconds, pack int) error {
	b, err := startPipeline(ctx, storeDir, name, "ttv", typ, settings)
	if err != nil {
		return err
	}
	defer b.stop()
	if err := b.start(); err != nil {
		return err
	}

	total := rate * seconds
	published := make([]time.Time, total)
	pubErr := make(chan error, 1)
	go func() {
		// Every tick, the tick's events are published in packs of at most pack events, as
		// requests of that many events would be.
		const tick = 10 * time.Millisecond
		perTick := max(1, rate/int(time.Second/tick))
		start := time.Now()
		for i := 0; i < total; {
			n := min(perTick, total-i)
			ids, evs := make([]string, n), make([][]byte, n)
			for j := range n {
				ids[j], evs[j] = fmt.Sprintf("ttv-%08d", i+j), event("ttv", i+j)
			}
			now := time.Now()
			for j := range n {
				published[i+j] = now
			}
			if err := b.publish(ctx, ids, evs, pack); err != nil {
				pubErr <- err
				return
			}
			i += n
			next := start.Add(time.Duration(i/perTick) * tick)
			time.Sleep(time.Until(next))
		}
		select {
		case <-b.conn.JS.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			pubErr <- errors.New("publish acks timed out")
			return
		}
		pubErr <- nil
	}()

	visible := make([]time.Duration, 0, total)
	seen := 0
	deadline := time.Now().Add(time.Duration(seconds)*time.Second + 60*time.Second)
	for seen < total && time.Now().Before(deadline) {
		if c := b.count(ctx); c >= 0 {
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
	verdict := "met"
	if pct(0.99) > 5*time.Second {
		verdict = "NOT met"
	}
	fmt.Printf("  %-9s %d events: p50 %v  p99 %v  max %v  (goal %s)\n", name, total, pct(0.50), pct(0.99), visible[len(visible)-1].Round(time.Millisecond), verdict)
	return nil
}
