package loader

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
	"github.com/switchyardhq/switchyard/services/warehouse/internal/schema"
)

// A load's CPU work (parsing, flattening, encoding) is done by prepare, on GOMAXPROCS goroutines,
// one sub-batch at a time, while the previous sub-batch is written. Rows of a table that has a
// copy plan are encoded for COPY right after they are built, while they are still in the CPU's
// cache; the writer then only sends the encoded bytes.

// copyPlan is how the rows of one PostgreSQL table are encoded while they are built: the columns
// of the COPY (sorted) and their types, all of which the table has with exactly the types the
// dialect creates (sqlengine.CopyableType). A row with a column outside the plan cannot be
// encoded; its table then takes the general path for that sub-batch (see partWriter.write).
type copyPlan struct {
	cols  []string
	kinds []sqlengine.ColumnKind
	pos   map[string]int32
}

func newCopyPlan(cols []string, kinds tableColumns) *copyPlan {
	p := &copyPlan{cols: cols, kinds: make([]sqlengine.ColumnKind, len(cols)), pos: make(map[string]int32, len(cols))}
	for j, c := range cols {
		p.kinds[j] = kinds[c]
		p.pos[c] = int32(j)
	}
	return p
}

// nextPlan is the plan after a general-path write used cols: the union with the previous plan's
// columns, so alternating event shapes settle on one plan, unless that would mostly send NULLs.
func nextPlan(prev *copyPlan, used []string, kinds tableColumns) *copyPlan {
	cols := used
	if prev != nil {
		union := map[string]struct{}{}
		for _, c := range prev.cols {
			union[c] = struct{}{}
		}
		for _, c := range used {
			union[c] = struct{}{}
		}
		if len(union) <= 2*len(used)+16 {
			cols = slices.Sorted(maps.Keys(union))
		}
	}
	return newCopyPlan(cols, kinds)
}

// copyPlans are the copy plans of one schema during a load: the preparing goroutine takes a
// snapshot for each sub-batch while the writer adds the plans of tables it wrote through the
// general path, and publishes the layout each such write committed. A nil *copyPlans (merge
// loads, other engines) has no plans.
type copyPlans struct {
	mu     sync.Mutex
	m      map[string]*copyPlan
	layout schemaLayout // the committed layout (never mutated: replaced)
}

// target is what a sub-batch is prepared against: the copy plans, and the committed layout,
// which tells whether its rows change the schema. Both are nil without plans.
type target struct {
	plans  map[string]*copyPlan
	layout schemaLayout
}

func (p *copyPlans) snapshot() target {
	if p == nil {
		return target{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return target{plans: maps.Clone(p.m), layout: p.layout}
}

func (p *copyPlans) setLayout(s schemaLayout) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layout = s
}

func (p *copyPlans) get(table string) *copyPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[table]
}

func (p *copyPlans) set(table string, plan *copyPlan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*copyPlan{}
	}
	p.m[table] = plan
}

// builtEvent is one event turned into rows (or the reason it cannot be).
type builtEvent struct {
	id      string // messageId
	rows    []schema.Row
	notices []schema.Notice
	err     error
}

// prepared is one sub-batch of a load: its events built into rows (selective sync applied), and
// the rows of every table whose copy plan covered all of them, encoded.
type prepared struct {
	offset  int // index of the first event in the load
	events  []builtEvent
	encoded map[string]*encodedTable
	// unplanned is set when an event table (not users or accounts) had no plan, or a row of it
	// did not fit its plan: the sub-batch changes the schema or creates a plan.
	unplanned bool
	// schemaChange is set when a row needs a table or a column the committed layout lacks.
	schemaChange bool
	// later are the load's next sub-batches, built ahead (not encoded) because this one changes
	// the schema: a new column's type is that of its values in the whole load (ensureTable), so
	// the writer reads their rows before it adds columns. They are not the writer's to release.
	later []*prepared
	// chunks hold the rows' columns (schema.Builder.TakeChunks).
	chunks schema.Chunks
}

// encodedTable is one table's rows of a sub-batch encoded for sqlengine.CopyNew.
type encodedTable struct {
	plan *copyPlan
	// parts are the encodings of the preparing goroutines, in event order.
	parts []*sqlengine.CopyData
	// discards are the values the plan's types could not take (stored as NULL), in event order.
	discards []discard
}

// release returns the encoding buffers and the rows' memory for reuse: the sub-batch's rows must
// not be used anymore.
func (p *prepared) release() {
	for _, t := range p.encoded {
		for _, d := range t.parts {
			putCopyData(d)
		}
	}
	p.chunks.Recycle()
	p.encoded, p.events, p.chunks = nil, nil, nil
}

// copyBuffers recycles encoding buffers between sub-batches and loads.
var copyBuffers = sync.Pool{New: func() any { return new(sqlengine.CopyData) }}

// maxPooledCopyData is the largest encoding buffer kept for reuse.
const maxPooledCopyData = 16 << 20

func putCopyData(d *sqlengine.CopyData) {
	if d.Len() > maxPooledCopyData {
		return
	}
	d.Reset()
	copyBuffers.Put(d)
}

// minEventsPerWorker is the smallest share of a sub-batch worth a goroutine of its own.
const minEventsPerWorker = 128

// prepare parses and builds events (offset is the first one's index in the load), and encodes the
// rows of the tables tg's plans cover. The work is split over up to cpus goroutines, each with its
// own schema.Builder, over consecutive events, so results keep the events' order: logs, notices
// and rows come out exactly as from one goroutine.
func (l *Loader) prepare(events [][]byte, offset int, loadedAt time.Time, tg target, cpus int) *prepared {
	p := &prepared{offset: offset, events: make([]builtEvent, len(events))}
	workers := max(1, min(cpus, len(events)/minEventsPerWorker))
	for len(l.builders) < workers {
		l.builders = append(l.builders, schema.NewBuilder())
	}
	encoders := make([]encoder, workers)
	per := (len(events) + workers - 1) / workers
	parallel(workers, func(w int) {
		b, enc := l.builders[w], &encoders[w]
		enc.target = tg
		enc.rows = min((w+1)*per, len(events)) - w*per
		for i := w * per; i < min((w+1)*per, len(events)); i++ {
			ev := &p.events[i]
			ev.rows, ev.notices, ev.err = b.Rows(events[i], loadedAt)
			if ev.err != nil {
				continue
			}
			ev.id = ev.rows[0].ID()
			ev.rows = l.selectRows(ev.rows)
			for _, r := range ev.rows {
				enc.add(r)
			}
		}
	})
	for _, b := range l.builders[:workers] {
		p.chunks = append(p.chunks, b.TakeChunks()...)
	}
	p.collect(encoders)
	return p
}

// encode encodes the rows of a sub-batch that was built ahead of its plans (prepare with an empty
// target), now that tg's plans exist.
func (p *prepared) encode(tg target, cpus int) {
	workers := max(1, min(cpus, len(p.events)/minEventsPerWorker))
	encoders := make([]encoder, workers)
	per := (len(p.events) + workers - 1) / workers
	parallel(workers, func(w int) {
		enc := &encoders[w]
		enc.target = tg
		enc.rows = min((w+1)*per, len(p.events)) - w*per
		for i := w * per; i < min((w+1)*per, len(p.events)); i++ {
			for _, r := range p.events[i].rows {
				enc.add(r)
			}
		}
	})
	p.collect(encoders)
}

// parallel runs f(0) … f(workers-1), each on a goroutine of its own when there are several.
func parallel(workers int, f func(w int)) {
	if workers == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}

// collect gathers the encoders' results: a table is encoded only when every goroutine that met
// its rows encoded all of them.
func (p *prepared) collect(encoders []encoder) {
	failed := map[string]bool{}
	for _, enc := range encoders {
		p.unplanned = p.unplanned || enc.unplanned
		p.schemaChange = p.schemaChange || enc.schemaChange
		for table, t := range enc.tables {
			failed[table] = failed[table] || t.failed
			p.unplanned = p.unplanned || t.failed
		}
	}
	for _, enc := range encoders {
		for table, t := range enc.tables {
			if failed[table] {
				putCopyData(t.data)
				continue
			}
			e := p.encoded[table]
			if e == nil {
				if p.encoded == nil {
					p.encoded = map[string]*encodedTable{}
				}
				e = &encodedTable{plan: t.plan}
				p.encoded[table] = e
			}
			e.parts = append(e.parts, t.data)
			e.discards = append(e.discards, t.discards...)
		}
	}
}

// selectRows applies selective sync: rows of disabled tables are dropped, disabled columns
// removed.
func (l *Loader) selectRows(rows []schema.Row) []schema.Row {
	sel := l.opts.Selection
	if len(sel.DisabledTables) == 0 && len(sel.DisabledColumns) == 0 {
		return rows
	}
	out := rows[:0]
	for _, r := range rows {
		if sel.DisabledTables[r.Table] {
			continue
		}
		if len(sel.DisabledColumns) > 0 {
			r = dropColumns(r, sel.DisabledColumns[r.Table], sel.DisabledColumns["*"])
		}
		out = append(out, r)
	}
	return out
}

// dropColumns returns r without the disabled columns; id and received_at always stay.
func dropColumns(r schema.Row, sets ...map[string]bool) schema.Row {
	disabled := func(c string) bool {
		if c == "id" || c == "received_at" {
			return false
		}
		for _, set := range sets {
			if set[c] {
				return true
			}
		}
		return false
	}
	if !slices.ContainsFunc(r.Columns, func(c schema.Column) bool { return disabled(c.Name) }) {
		return r
	}
	out := r
	out.Columns = make([]schema.Column, 0, len(r.Columns))
	for _, c := range r.Columns {
		if !disabled(c.Name) {
			out.Columns = append(out.Columns, c)
		}
	}
	return out
}

// check notes whether r needs a table or column the committed layout lacks (a row that fits a
// copy plan never does: plans only name committed columns). Without a layout nothing is noted.
func (e *encoder) check(r schema.Row) {
	if e.layout == nil || e.schemaChange || sameNames(e.fits[r.Table], r.Columns) {
		return
	}
	t, ok := e.layout[r.Table]
	if !ok {
		e.schemaChange = true
		return
	}
	for _, c := range r.Columns {
		if _, ok := t.cols[c.Name]; !ok {
			e.schemaChange = true
			return
		}
	}
	if e.fits == nil {
		e.fits = map[string][]schema.Column{}
	}
	e.fits[r.Table] = r.Columns
}

// encoder encodes the rows one preparing goroutine builds, per table, and notes rows that change
// the schema.
type encoder struct {
	target
	tables       map[string]*tableEncoder
	recent       [2]*tableEncoder // the tables of the last rows (a track event has two)
	unplanned    bool             // a row of an event table without a plan
	schemaChange bool             // a row with a table or column the layout lacks
	rows         int              // events the goroutine builds: the most rows a table gets
	// fits holds, per table, the column names of the last row that was checked against the
	// layout and fit it.
	fits map[string][]schema.Column
}

// tableEncoder encodes one table's rows with its plan.
type tableEncoder struct {
	table    string
	plan     *copyPlan
	data     *sqlengine.CopyData
	discards []discard
	failed   bool // a row had a column outside the plan
	// last and slots cache the placement of the previous row's columns: slots[j] is the index in
	// last of plan column j, or -1. Rows of one event type mostly share their columns.
	last  []schema.Column
	slots []int32
}

// table returns the encoder of table, nil when it has no plan.
func (e *encoder) table(table string) *tableEncoder {
	for _, t := range e.recent {
		if t != nil && t.table == table {
			return t
		}
	}
	t := e.tables[table]
	if t == nil {
		plan := e.plans[table]
		if plan == nil {
			e.unplanned = e.unplanned || !owned(table)
			return nil
		}
		if e.tables == nil {
			e.tables = map[string]*tableEncoder{}
		}
		t = &tableEncoder{table: table, plan: plan, data: copyBuffers.Get().(*sqlengine.CopyData)}
		t.data.Grow(e.rows * (2 + 12*len(plan.cols))) // a guess: many fields are short or NULL
		e.tables[table] = t
	}
	e.recent[0], e.recent[1] = t, e.recent[0]
	return t
}

// add encodes r when its table has a plan it fits, and otherwise checks it against the layout.
// Owned tables (users, accounts) are upserted, never copied, and have no plan.
func (e *encoder) add(r schema.Row) {
	t := e.table(r.Table)
	if t == nil || t.failed {
		e.check(r)
		return
	}
	plan := t.plan
	if !sameNames(t.last, r.Columns) {
		slots := make([]int32, len(plan.cols))
		for j := range slots {
			slots[j] = -1
		}
		for k, c := range r.Columns {
			j, ok := plan.pos[c.Name]
			if !ok {
				t.failed = true
				e.check(r)
				return
			}
			slots[j] = int32(k)
		}
		t.last, t.slots = r.Columns, slots
	}
	t.data.StartRow(len(t.slots))
	for j, k := range t.slots {
		if k < 0 {
			t.data.Null()
			continue
		}
		v, err := cast(r.Columns[k].Value, plan.kinds[j])
		if err != nil {
			t.discards = append(t.discards, castDiscard(r, plan.cols[j], r.Columns[k].Value, err))
		}
		writeCopy(t.data, v)
	}
}
