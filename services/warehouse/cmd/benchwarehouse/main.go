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
	"runtime/pprof"
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
	batch := flag.Int("batch", pipeline.BatchSize, "events per load when caught up (the pipeline's batch_size)")
	rate := flag.Int("rate", 10000, "events/s for the time-to-visible run")
	seconds := flag.Int("seconds", 10, "duration of the time-to-visible run")
	multiRow := flag.Bool("multirow", false, "also measure the multi-row INSERT path (slow on DuckDB)")
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
	if err := run(*events, *batch, *rate, *seconds, *multiRow); err != nil {
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

// plainCopyRuns is how many times the plain COPY is measured; the median is the reference.
const plainCopyRuns = 3

func run(n, batch, rate, seconds int, multiRow bool) error {
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
	backlog := pipeline.Settings{BatchSize: batch}.BacklogBatch()
	fmt.Printf("warehouse load benchmark: %d track events (2 rows each: tracks + order_completed)\n", n)
	fmt.Printf("throughput (rows/s, JSON events in → committed rows; each run into an empty schema):\n")

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
		label    string
		batch    int
		multiRow bool
	}
	cases := []loadCase{
		{duck, fmt.Sprintf("loader, %d events/load", batch), batch, false},
		{duck, fmt.Sprintf("loader, %d events/load", backlog), backlog, false},
		{pg, fmt.Sprintf("loader, %d events/load", batch), batch, false},
		{pg, fmt.Sprintf("loader, %d events/load", backlog), backlog, false},
	}
	if multiRow {
		cases = append(cases, loadCase{duck, "loader, multi-row INSERT", batch, true}, loadCase{pg, "loader, multi-row INSERT", batch, true})
	}
	pgRates := map[string]float64{}
	for i, c := range cases {
		e, err := c.e.open(fmt.Sprintf("load%d", i))
		if err != nil {
			return err
		}
		l := loader.NewWithOptions(e, nil, loader.Options{MultiRowInsert: c.multiRow})
		schemaName := fmt.Sprintf("bench_%d", i)
		in := evs
		if c.multiRow {
			in = evs[:min(len(evs), 10000)] // slow on DuckDB: a smaller sample is enough to compare
		}
		start := time.Now()
		var rows int64
		for chunk := range slices.Chunk(in, c.batch) {
			res, err := l.Load(ctx, schemaName, chunk)
			if err != nil {
				_ = e.Close()
				return fmt.Errorf("%s %s: %w", c.e.name, c.label, err)
			}
			for _, v := range res.Rows {
				rows += v
			}
		}
		el := time.Since(start)
		_ = e.Close()
		r := float64(rows) / el.Seconds()
		if c.e.name == "postgres" {
			pgRates[c.label] = r
		}
		fmt.Printf("  %-9s %-34s %9.0f rows/s  (%d rows in %v)\n", c.e.name, c.label, r, rows, el.Round(time.Millisecond))
	}

	drains := map[string]float64{}
	for _, c := range []struct {
		name string
		typ  catalogv1.WarehouseType
		set  map[string]any
	}{
		{"duckdb", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(tmp, "drain.duckdb"), "batch_size": batch}},
		{"postgres", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": pgURL, "batch_size": batch}},
	} {
		r, el, err := drain(ctx, filepath.Join(tmp, "nats-drain-"+c.name), c.name, c.typ, c.set, evs)
		if err != nil {
			return fmt.Errorf("drain %s: %w", c.name, err)
		}
		drains[c.name] = r
		fmt.Printf("  %-9s %-34s %9.0f rows/s  (%d rows in %v)\n", c.name, "consumer draining a backlog", r, 2*len(evs), el.Round(time.Millisecond))
	}

	median := func(keyed bool) (float64, []float64, error) {
		var copies []float64
		for i := range plainCopyRuns {
			r, err := plainCopy(ctx, pgURL, evs, i, keyed)
			if err != nil {
				return 0, nil, err
			}
			copies = append(copies, r)
		}
		slices.Sort(copies)
		return copies[len(copies)/2], copies, nil
	}
	copyRate, copies, err := median(false)
	if err != nil {
		return err
	}
	fmt.Printf("  %-9s %-34s %9.0f rows/s  (median of %d: %.0f … %.0f; same rows, prepared, empty keyless tables, one transaction)\n",
		"postgres", "plain COPY", copyRate, len(copies), copies[0], copies[len(copies)-1])
	keyedRate, keyed, err := median(true)
	if err != nil {
		return err
	}
	fmt.Printf("  %-9s %-34s %9.0f rows/s  (median of %d: %.0f … %.0f; as above with id PRIMARY KEY: the ceiling of any exactly-once load)\n",
		"postgres", "plain COPY, keyed tables", keyedRate, len(keyed), keyed[0], keyed[len(keyed)-1])
	fmt.Printf("postgres load / plain COPY (goal ≥ 0.50):\n")
	fmt.Printf("  %-44s %.2f\n", "consumer draining a backlog", drains["postgres"]/copyRate)
	for _, c := range cases {
		if c.e.name == "postgres" && !c.multiRow {
			fmt.Printf("  %-44s %.2f\n", c.label, pgRates[c.label]/copyRate)
		}
	}

	fmt.Printf("time-to-visible at %d events/s for %d s through the consumer (embedded NATS, batch_size %d, batch_wait 500 ms; goal p99 ≤ 5 s):\n", rate, seconds, batch)
	for _, c := range []struct {
		name string
		typ  catalogv1.WarehouseType
		set  map[string]any
	}{
		{"duckdb", catalogv1.WarehouseType_WAREHOUSE_TYPE_DUCKDB, map[string]any{"path": filepath.Join(tmp, "ttv.duckdb"), "batch_size": batch}},
		{"postgres", catalogv1.WarehouseType_WAREHOUSE_TYPE_POSTGRES, map[string]any{"dsn": pgURL, "batch_size": batch}},
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
			for c, v := range r.Columns {
				kinds[c] = v.Kind
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

// bench is one warehouse loading from an embedded NATS through the real pipeline.
type bench struct {
	conn    *jetstream.Conn
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
	b := &bench{conn: conn, subject: streams.EventsSubject("ws", "src"), schema: slug}
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

// publish sends one event to the source's subject without waiting for the ack.
func (b *bench) publish(ctx context.Context, id string, data []byte) error {
	msg := jetstream.NewMsg(ctx, b.subject, data, jetstream.Headers{MsgID: id, Workspace: "ws", Source: "src", EventType: "track"})
	_, err := b.conn.JS.PublishMsgAsync(msg)
	return err
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

// drain publishes evs into the stream with the warehouse stopped, then starts it and measures how
// long the consumer takes until every event's rows are committed: the load throughput of the real
// consumer path (fetch, adaptive batches, load, ack) under a backlog.
func drain(ctx context.Context, storeDir, name string, typ catalogv1.WarehouseType, settings map[string]any, evs [][]byte) (float64, time.Duration, error) {
	b, err := startPipeline(ctx, storeDir, name, "drain", typ, settings)
	if err != nil {
		return 0, 0, err
	}
	defer b.stop()
	for i, ev := range evs {
		if err := b.publish(ctx, fmt.Sprintf("drain-%08d", i), ev); err != nil {
			return 0, 0, err
		}
	}
	select {
	case <-b.conn.JS.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		return 0, 0, errors.New("publish acks timed out")
	}
	start := time.Now()
	if err := b.start(); err != nil {
		return 0, 0, err
	}
	deadline := start.Add(5 * time.Minute)
	for b.count(ctx) < int64(len(evs)) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("only %d of %d events loaded after 5 minutes", b.count(ctx), len(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	el := time.Since(start)
	return float64(2*len(evs)) / el.Seconds(), el, nil
}

// timeToVisible publishes rate events/s for the given seconds into an embedded NATS and measures,
// per event, the time from its publish to the first poll (every 25 ms) that sees it in the
// warehouse. Events load in stream order, so "count(*) ≥ k" means event k is visible.
func timeToVisible(ctx context.Context, storeDir, name string, typ catalogv1.WarehouseType, settings map[string]any, rate, seconds int) error {
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
		const tick = 10 * time.Millisecond
		perTick := rate / int(time.Second/tick)
		start := time.Now()
		for i := 0; i < total; {
			for j := 0; j < perTick && i < total; j++ {
				published[i] = time.Now()
				if err := b.publish(ctx, fmt.Sprintf("ttv-%08d", i), event("ttv", i)); err != nil {
					pubErr <- err
					return
				}
				i++
			}
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
