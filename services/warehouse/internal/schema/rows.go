package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyardhq/switchyard/services/internal/sqlengine"
)

// ErrInvalidEvent is returned by Build for an event that cannot become warehouse rows: no
// messageId, an unknown type, or a track call without an event name. Retrying cannot fix it.
var ErrInvalidEvent = errors.New("invalid event")

// Table names Segment's warehouses use for each call type.
const (
	TableTracks     = "tracks"
	TableIdentifies = "identifies"
	TableUsers      = "users"
	TablePages      = "pages"
	TableScreens    = "screens"
	TableGroups     = "groups"
	TableAliases    = "aliases"
	// TableAccounts holds one row per group_id (upserted from group calls, latest traits).
	TableAccounts = "accounts"
	// TableDiscards records values that could not be cast to their column's type.
	TableDiscards = "discards"
)

// reservedTables are table names an event slug may not take: an event called "Tracks" lands in
// "_tracks" so it never mixes with the tracks table.
var reservedTables = map[string]bool{
	TableTracks: true, TableIdentifies: true, TableUsers: true, TablePages: true, TableScreens: true,
	TableGroups: true, TableAliases: true, TableDiscards: true, TableAccounts: true,
}

// systemColumns are set from the event envelope. A property or trait that maps to one of them, or
// to any context_* column, is discarded (Segment: "discards properties with the same name as the
// reserved column name").
var systemColumns = map[string]bool{
	"id": true, "received_at": true, "sent_at": true, "timestamp": true, "original_timestamp": true,
	"anonymous_id": true, "user_id": true, "event": true, "event_text": true, "uuid_ts": true,
	"uuid": true, "loaded_at": true,
}

// Value is one typed column value: a string, int64, float64, bool or UTC time, matching Kind. It
// holds the value inline (no allocation per value); the zero Value has no kind and stands for
// NULL.
type Value struct {
	str string
	// num is the int64 of KindInt, the IEEE 754 bits of KindFloat, 0 or 1 for KindBool, and the
	// Unix seconds of KindTimestamp.
	num  int64
	nsec int32 // KindTimestamp: nanoseconds within the second
	kind uint8 // a sqlengine.ColumnKind; one byte keeps a Value at 32 bytes
}

// StringValue returns a KindString value.
func StringValue(s string) Value { return Value{kind: uint8(sqlengine.KindString), str: s} }

// IntValue returns a KindInt value.
func IntValue(i int64) Value { return Value{kind: uint8(sqlengine.KindInt), num: i} }

// FloatValue returns a KindFloat value.
func FloatValue(f float64) Value {
	return Value{kind: uint8(sqlengine.KindFloat), num: int64(math.Float64bits(f))}
}

// BoolValue returns a KindBool value.
func BoolValue(b bool) Value {
	v := Value{kind: uint8(sqlengine.KindBool)}
	if b {
		v.num = 1
	}
	return v
}

// TimeValue returns a KindTimestamp value holding t in UTC.
func TimeValue(t time.Time) Value {
	return Value{kind: uint8(sqlengine.KindTimestamp), num: t.Unix(), nsec: int32(t.Nanosecond())}
}

// Kind returns the value's kind (0 for the zero Value).
func (v Value) Kind() sqlengine.ColumnKind { return sqlengine.ColumnKind(v.kind) }

// Str returns the string of a KindString value.
func (v Value) Str() string { return v.str }

// Int returns the integer of a KindInt value.
func (v Value) Int() int64 { return v.num }

// Float returns the number of a KindFloat value.
func (v Value) Float() float64 { return math.Float64frombits(uint64(v.num)) }

// Bool returns the boolean of a KindBool value.
func (v Value) Bool() bool { return v.num != 0 }

// Time returns the time of a KindTimestamp value, in UTC.
func (v Value) Time() time.Time { return time.Unix(v.num, int64(v.nsec)).UTC() }

// Unix returns the Unix seconds and nanoseconds of a KindTimestamp value.
func (v Value) Unix() (sec int64, nsec int32) { return v.num, v.nsec }

// Any returns the value as a driver argument: string, int64, float64, bool or time.Time (UTC); nil
// for the zero Value.
func (v Value) Any() any {
	switch v.Kind() {
	case sqlengine.KindString:
		return v.str
	case sqlengine.KindInt:
		return v.num
	case sqlengine.KindFloat:
		return v.Float()
	case sqlengine.KindBool:
		return v.Bool()
	case sqlengine.KindTimestamp:
		return v.Time()
	}
	return nil
}

// String renders the value for logs and test failures.
func (v Value) String() string {
	if v.kind == 0 {
		return "NULL"
	}
	return fmt.Sprintf("%s(%v)", v.Kind(), v.Any())
}

// Column is one named value of a Row.
type Column struct {
	Name  string
	Value Value
}

// Row is one row for one table.
type Row struct {
	Table string
	// Columns holds each column once, "id" first, the others in the order Build met them.
	Columns []Column
}

// ID returns the row's id column, which is the primary key of every table.
func (r Row) ID() string {
	if len(r.Columns) > 0 && r.Columns[0].Name == "id" {
		return r.Columns[0].Value.str
	}
	v, _ := r.Get("id")
	return v.str
}

// Get returns the value of the named column.
func (r Row) Get(name string) (Value, bool) {
	for _, c := range r.Columns {
		if c.Name == name {
			return c.Value, true
		}
	}
	return Value{}, false
}

// Notice reports a property, trait or context key that did not become a column, or that lost to
// another key mapping to the same column. Loaders log notices; they do not fail the load.
type Notice struct {
	Table  string
	Column string
	Key    string
	Reason string
}

// Build turns one event into rows. loadedAt is the load time, stored in uuid_ts, and the
// received_at fallback when the event carries no valid receivedAt.
//
// Layout, following Segment's warehouse schema:
//   - track: a row in "tracks" with the common columns plus event (the event table's name) and
//     event_text (the original name), and a row in the event's own table with the same columns
//     plus one column per property;
//   - identify: "identifies" (common + traits), and, when userId is set, a "users" row with
//     id = userId, received_at, uuid_ts and the traits, which loaders upsert;
//   - page / screen: "pages" / "screens" (common + name + properties);
//   - group: "groups" (common + group_id + traits), and, when groupId is set, an "accounts" row
//     with id = groupId, received_at, uuid_ts and the traits, which loaders upsert;
//   - alias: "aliases" (common + previous_id).
//
// Common columns: id (messageId), received_at, sent_at, timestamp, original_timestamp,
// anonymous_id, user_id, context_* and uuid_ts.
//
// Naming and values: names go through Snake then Ident; nested objects are flattened with "_"
// (context columns get the "context_" prefix); arrays become JSON text; null values and empty
// objects produce no column; an empty string is kept as an empty string. Properties and traits
// that map to a system column are discarded with a Notice. When several keys map to the same
// column, the last one in document order wins and a Notice names the loser.
//
// Build uses a new Builder; a caller building many events keeps one (Builder.Build, Builder.Rows).
func Build(ev Object, loadedAt time.Time) ([]Row, []Notice, error) {
	return NewBuilder().Build(ev, loadedAt)
}

// Builder parses events and turns them into rows, keeping its parse buffers and a cache of column
// names from one event to the next. It is not safe for concurrent use: each goroutine has its own.
type Builder struct {
	p       parser
	names   map[nameKey]cachedName
	memos   map[string]*keyMemo
	notices []Notice
	// path is the key path of the object being walked (for notices).
	path []string
	json bytes.Buffer
	// chunk is where rows' columns are carved from: one large allocation for many events is
	// cheaper than one per event. A chunk stays in memory while any row carved from it does.
	// chunks are the full-size chunks handed out since TakeChunks.
	chunk  []Column
	chunks Chunks
	big    bool // chunks have reached full size
}

// Chunks of columns grow from minChunk to maxChunk columns.
const (
	minChunk = 256
	maxChunk = 4096
)

// chunkPool recycles full-size chunks (see Chunks.Recycle).
var chunkPool = sync.Pool{New: func() any { return make([]Column, 0, maxChunk) }}

// cells returns an empty slice with room for exactly n columns (appending more reallocates).
func (b *Builder) cells(n int) []Column {
	if n > cap(b.chunk)-len(b.chunk) {
		switch size := max(n, min(maxChunk, 2*cap(b.chunk)), minChunk); {
		case size == maxChunk || (b.big && n <= maxChunk):
			b.chunk, b.big = chunkPool.Get().([]Column), true
			b.chunks = append(b.chunks, b.chunk)
		default:
			b.chunk = make([]Column, 0, size)
		}
	}
	start := len(b.chunk)
	b.chunk = b.chunk[:start+n]
	return b.chunk[start : start : start+n]
}

// Chunks are the memory the columns of some rows were carved from.
type Chunks [][]Column

// TakeChunks returns the chunks the rows built since the last call use (the full-size ones), and
// makes the next rows use new chunks.
func (b *Builder) TakeChunks() Chunks {
	c := b.chunks
	b.chunks, b.chunk = nil, nil
	return c
}

// Recycle lets new rows reuse the chunks. The rows carved from them must not be used anymore.
func (c Chunks) Recycle() {
	for _, chunk := range c {
		clear(chunk[:cap(chunk)])
		chunkPool.Put(chunk[:0])
	}
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{names: map[nameKey]cachedName{}, memos: map[string]*keyMemo{}}
}

// Rows parses raw, one event's JSON, and builds its rows: ParseObject then Build.
func (b *Builder) Rows(raw []byte, loadedAt time.Time) ([]Row, []Notice, error) {
	ev, err := b.p.parse(raw)
	if err != nil {
		return nil, nil, err
	}
	return b.Build(ev, loadedAt)
}

// envelope locates the members of an event Build reads (the last of a repeated key, as Get).
type envelope struct {
	typ, messageID, receivedAt, anonymousID, userID, event, name, groupID, previousID Node
	times                                                                             [3]Node // sentAt, timestamp, originalTimestamp
	context, properties, traits                                                       Node
}

func readEnvelope(ev Object) envelope {
	var e envelope
	for _, m := range ev {
		switch m.Key {
		case "type":
			e.typ = m.Value
		case "messageId":
			e.messageID = m.Value
		case "receivedAt":
			e.receivedAt = m.Value
		case "sentAt":
			e.times[0] = m.Value
		case "timestamp":
			e.times[1] = m.Value
		case "originalTimestamp":
			e.times[2] = m.Value
		case "anonymousId":
			e.anonymousID = m.Value
		case "userId":
			e.userID = m.Value
		case "context":
			e.context = m.Value
		case "properties":
			e.properties = m.Value
		case "traits":
			e.traits = m.Value
		case "event":
			e.event = m.Value
		case "name":
			e.name = m.Value
		case "groupId":
			e.groupID = m.Value
		case "previousId":
			e.previousID = m.Value
		}
	}
	return e
}

// Build turns one event into rows, as the function Build does.
func (b *Builder) Build(ev Object, loadedAt time.Time) ([]Row, []Notice, error) {
	env := readEnvelope(ev)
	typ := text(env.typ)
	msgID := text(env.messageID)
	if msgID == "" {
		return nil, nil, fmt.Errorf("%w: no messageId", ErrInvalidEvent)
	}
	b.notices = nil

	// Properties and traits never map to a column of common (system and context_* columns are
	// discarded), and context columns never map to a system column, so each flatten only checks
	// its own columns for collisions, and rows are filled in place instead of merged.
	ctx := object(env.context)
	var body Object
	switch typ {
	case "track", "page", "screen":
		body = object(env.properties)
	case "identify", "group":
		body = object(env.traits)
	}
	// Room for the common columns, the call's own columns and the flattened objects; a track
	// call's two rows share one allocation.
	size := 10 + countLeaves(ctx)
	if typ == "track" {
		size *= 2
	}
	common := b.cells(size + countLeaves(body))
	uuidTS := TimeValue(loadedAt)
	received := uuidTS
	if t, ok := timestamp(text(env.receivedAt)); ok {
		received = t
	}
	common = append(common, Column{"id", StringValue(msgID)}, Column{"uuid_ts", uuidTS}, Column{"received_at", received})
	for i, col := range timeColumns {
		if t, ok := timestamp(text(env.times[i])); ok {
			common = append(common, Column{col, t})
		}
	}
	if s := text(env.anonymousID); s != "" {
		common = append(common, Column{"anonymous_id", StringValue(s)})
	}
	if s := text(env.userID); s != "" {
		common = append(common, Column{"user_id", StringValue(s)})
	}
	if ctx != nil {
		common = b.flatten(common, typ, "context", ctx, nil)
	}

	var rows []Row
	switch typ {
	case "track":
		name := text(env.event)
		if name == "" {
			return nil, nil, fmt.Errorf("%w: track without an event name", ErrInvalidEvent)
		}
		table := b.tableName(name)
		common = append(common, Column{"event", StringValue(table)}, Column{"event_text", StringValue(name)})
		if table == "" {
			rows = append(rows, Row{Table: TableTracks, Columns: common})
			b.notice(TableTracks, "", name, "event name has no letters or digits: no event table")
			break
		}
		// The event row continues in the same backing array, after the tracks row.
		tracks := common[:len(common):len(common)]
		row := append(common[len(common):], tracks...)
		row = b.flatten(row, table, "", body, nil)
		rows = append(make([]Row, 0, 2), Row{Table: TableTracks, Columns: tracks}, Row{Table: table, Columns: row})
	case "identify":
		uid, ok := lookup(common, "user_id")
		if !ok {
			common = b.flatten(common, TableIdentifies, "", body, nil)
			rows = append(rows, Row{Table: TableIdentifies, Columns: common})
			break
		}
		user := b.owned(uid, received, uuidTS, TableIdentifies, body, nil)
		common = append(common, user[3:]...)
		rows = append(make([]Row, 0, 2), Row{Table: TableIdentifies, Columns: common}, Row{Table: TableUsers, Columns: user})
	case "page", "screen":
		table := TablePages
		if typ == "screen" {
			table = TableScreens
		}
		if name := text(env.name); name != "" {
			common = append(common, Column{"name", StringValue(name)})
		}
		common = b.flatten(common, table, "", body, reservedName)
		rows = append(rows, Row{Table: table, Columns: common})
	case "group":
		gid := text(env.groupID)
		if gid == "" {
			common = b.flatten(common, TableGroups, "", body, reservedGroupID)
			rows = append(rows, Row{Table: TableGroups, Columns: common})
			break
		}
		common = append(common, Column{"group_id", StringValue(gid)})
		account := b.owned(StringValue(gid), received, uuidTS, TableGroups, body, reservedGroupID)
		common = append(common, account[3:]...)
		rows = append(make([]Row, 0, 2), Row{Table: TableGroups, Columns: common}, Row{Table: TableAccounts, Columns: account})
	case "alias":
		if prev := text(env.previousID); prev != "" {
			common = append(common, Column{"previous_id", StringValue(prev)})
		}
		rows = append(rows, Row{Table: TableAliases, Columns: common})
	default:
		return nil, nil, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, typ)
	}
	return rows, b.notices, nil
}

// timeColumns are the columns of envelope.times.
var timeColumns = [3]string{"sent_at", "timestamp", "original_timestamp"}

// Names properties and traits may not take besides the system columns, per call type.
var (
	reservedName    = map[string]bool{"name": true}
	reservedGroupID = map[string]bool{"group_id": true}
)

// lookup returns the value of the named column of cols.
func lookup(cols []Column, name string) (Value, bool) {
	return Row{Columns: cols}.Get(name)
}

// countLeaves counts the scalar and array members of o, at any depth: an upper bound of the
// columns flattening o gives.
func countLeaves(o Object) int {
	n := 0
	for _, m := range o {
		if m.Value.Kind == NodeObject {
			n += countLeaves(m.Value.Members)
		} else {
			n++
		}
	}
	return n
}

// owned returns the row of a users or accounts record: id, received_at, uuid_ts (in that order),
// then the traits of o.
func (b *Builder) owned(id, received, uuidTS Value, table string, o Object, reserved map[string]bool) []Column {
	cols := b.cells(3 + countLeaves(o))
	cols = append(cols, Column{"id", id}, Column{"received_at", received}, Column{"uuid_ts", uuidTS})
	return b.flatten(cols, table, "", o, reserved)
}

func (b *Builder) notice(table, column, key, reason string) {
	b.notices = append(b.notices, Notice{Table: table, Column: column, Key: key, Reason: reason})
}

// maxLinearColumns is the most columns one flatten checks for collisions by scanning; past it, it
// indexes them in a map.
const maxLinearColumns = 32

// flatten appends the columns of o to dst, named prefix_key_subkey…; keys are snake-cased one by
// one. Without a prefix (properties, traits) system columns, context_* and reserved names are
// discarded with a notice. When several keys map to one column the last wins (in the position of
// the first), with a notice naming the key it replaced. Build's callers guarantee that no name
// flatten produces is in dst beforehand (see Build), so only the appended columns are checked.
func (b *Builder) flatten(dst []Column, table, prefix string, o Object, reserved map[string]bool) []Column {
	f := flat{dst: dst, start: len(dst), table: table, prefix: prefix, root: o, reserved: reserved}
	b.walk(o, prefix, &f)
	return f.dst
}

// flat is one walk over an object: a flatten appending columns to dst or, with find set, the
// search of earlierKey.
type flat struct {
	table, prefix string
	root          Object
	reserved      map[string]bool
	leaf          int // column-producing leaves so far

	dst   []Column
	start int            // dst[start:] are this flatten's columns
	index map[string]int // their positions, once there are many

	find  string // earlierKey: the column looked for, up to leaf upTo
	upTo  int
	found string
}

// add takes the next column-producing leaf; false stops the walk.
func (b *Builder) add(f *flat, col, key string, v Value) bool {
	f.leaf++
	if f.find != "" {
		if f.leaf >= f.upTo {
			return false
		}
		if col == f.find {
			f.found = keyPath(b.path, key)
		}
		return true
	}
	at := -1
	if f.index != nil {
		if i, ok := f.index[col]; ok {
			at = i
		}
	} else {
		for i := f.start; i < len(f.dst); i++ {
			if f.dst[i].Name == col {
				at = i
				break
			}
		}
	}
	if at >= 0 {
		b.notice(f.table, col, b.earlierKey(f, col),
			fmt.Sprintf("key %q maps to the same column and comes later: it wins", keyPath(b.path, key)))
		f.dst[at].Value = v
		return true
	}
	f.dst = append(f.dst, Column{col, v})
	switch {
	case f.index != nil:
		f.index[col] = len(f.dst) - 1
	case len(f.dst)-f.start > maxLinearColumns:
		f.index = make(map[string]int, 2*maxLinearColumns)
		for i := f.start; i < len(f.dst); i++ {
			f.index[f.dst[i].Name] = i
		}
	}
	return true
}

// walk visits the leaves of o in document order that become a column, passing each to add until
// it returns false; b.path holds the keys leading to the leaf meanwhile. Outside earlierKey's
// search it records the notices of keys that become no column.
func (b *Builder) walk(o Object, prefix string, f *flat) bool {
	memo := b.memo(prefix)
	for i, m := range o {
		var name cachedName
		if i < len(memo.keys) && memo.keys[i] == m.Key {
			name = memo.names[i]
		} else {
			name = b.columnName(prefix, m.Key)
			memo.set(i, m.Key, name)
		}
		if m.Value.Kind == NodeObject {
			b.path = append(b.path, m.Key)
			ok := b.walk(m.Value.Members, name.joined, f) // an empty object adds nothing
			b.path = b.path[:len(b.path)-1]
			if !ok {
				return false
			}
			continue
		}
		v, ok := Value{}, true
		if m.Value.Kind == NodeArray {
			b.json.Reset() // infer's JSON text, rendered in the Builder's buffer
			writeJSON(&b.json, m.Value)
			v = StringValue(b.json.String())
		} else {
			v, ok = infer(m.Value)
		}
		if !ok {
			continue // null: no column
		}
		col := name.ident
		switch {
		case col == "":
			if f.find == "" {
				b.notice(f.table, "", keyPath(b.path, m.Key), "name has no letters or digits")
			}
		case prefix == "" && (name.system || f.reserved[col]):
			if f.find == "" {
				b.notice(f.table, col, keyPath(b.path, m.Key), "collides with a reserved column: discarded")
			}
		default:
			if !b.add(f, col, m.Key, v) {
				return false
			}
		}
	}
	return true
}

// earlierKey returns the key path of the last column-producing leaf of f's object before its
// current one that maps to col: the key the current one replaces. Only called on a collision,
// which is rare, so it walks the object again instead of recording every key path.
func (b *Builder) earlierKey(f *flat, col string) string {
	search := flat{table: f.table, prefix: f.prefix, root: f.root, reserved: f.reserved, find: col, upTo: f.leaf}
	quiet := &Builder{names: b.names}
	quiet.walk(f.root, f.prefix, &search)
	return search.found
}

// columnName joins prefix and the snake_case form of key with "_" (a key without letters or
// digits adds nothing to prefix): the prefix of a nested object's columns, and, through Ident,
// the column of a leaf. Both are cached: events of one source repeat the same keys.
func (b *Builder) columnName(prefix, key string) cachedName {
	k := nameKey{prefix, key}
	if n, ok := b.names[k]; ok {
		return n
	}
	joined := prefix
	if part := Snake(key); part != "" {
		if joined != "" {
			joined += "_"
		}
		joined += part
	}
	n := cachedName{joined: joined, ident: Ident(joined)}
	n.system = systemColumns[n.ident] || strings.HasPrefix(n.ident, "context_")
	if len(b.names) < maxCachedNames {
		b.names[k] = n
	}
	return n
}

// cachedName is a cached column name: prefix and key joined, and its Ident; system is whether the
// Ident is a system or context_* column, which properties and traits may not take.
type cachedName struct {
	joined, ident string
	system        bool
}

// keyMemo remembers the keys of the last object flattened under one prefix and their names:
// objects of consecutive events mostly have the same keys in the same order, and comparing a key
// costs less than hashing it.
type keyMemo struct {
	keys  []string
	names []cachedName
}

// maxMemoKeys bounds a keyMemo; later members of a larger object use the name cache only.
const maxMemoKeys = 256

func (m *keyMemo) set(i int, key string, name cachedName) {
	switch {
	case i < len(m.keys):
		m.keys[i], m.names[i] = key, name
	case i == len(m.keys) && i < maxMemoKeys:
		m.keys, m.names = append(m.keys, key), append(m.names, name)
	}
}

// memo returns the key memo of prefix.
func (b *Builder) memo(prefix string) *keyMemo {
	m := b.memos[prefix]
	if m == nil {
		if b.memos == nil || len(b.memos) >= maxCachedNames {
			return &keyMemo{}
		}
		m = &keyMemo{}
		b.memos[prefix] = m
	}
	return m
}

// tableName is the table of a track event named name: Ident(Snake(name)), with "_" before a
// Segment table's name. Cached with the column names.
func (b *Builder) tableName(event string) string {
	k := nameKey{"\x00event", event}
	if t, ok := b.names[k]; ok {
		return t.ident
	}
	t := Ident(Snake(event))
	if reservedTables[t] {
		t = "_" + t
	}
	if len(b.names) < maxCachedNames {
		b.names[k] = cachedName{ident: t}
	}
	return t
}

type nameKey struct{ prefix, key string }

// maxCachedNames bounds a Builder's name cache; names past it are computed each time.
const maxCachedNames = 1 << 14

// keyPath renders a key's path for notices: the keys from the flattened object down, joined by ".".
// An empty key at the top adds nothing to the path ({"": {"id": 1}} gives "id"), as it adds nothing
// to the column name.
func keyPath(path []string, key string) string {
	p := ""
	for i := 0; i <= len(path); i++ {
		part := key
		if i < len(path) {
			part = path[i]
		}
		if p == "" {
			p = part
		} else {
			p += "." + part
		}
	}
	return p
}

// text returns a string, number or boolean as text, anything else as "".
func text(v Node) string {
	switch v.Kind {
	case NodeString:
		return stripNUL(v.Text)
	case NodeNumber:
		return v.Text
	case NodeTrue:
		return "true"
	case NodeFalse:
		return "false"
	}
	return ""
}

// object returns the members of an object node, nil for any other value.
func object(v Node) Object {
	if v.Kind != NodeObject {
		return nil
	}
	return v.Members
}

// parseTime accepts a full RFC 3339 date-time (with optional fraction and any offset) as
// time.Parse does with time.RFC3339Nano, and returns it in UTC. Dates alone ("2024-01-01") are not
// timestamps.
func parseTime(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || !isDigit(s[0]) {
		return time.Time{}, false // cheap refusal of what cannot be a date-time
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// timestamp is parseTime giving a Value. The strict RFC 3339 form that time.Parse itself reads
// on its fast path ("2006-01-02T15:04:05.999999999Z07:00", two-digit fields in range) is read
// here without building a time.Time; anything else goes through parseTime.
func timestamp(s string) (Value, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || !isDigit(s[0]) {
		return Value{}, false
	}
	ok := true
	num := func(s string, lo, hi int) int {
		x := 0
		for i := 0; i < len(s); i++ {
			if !isDigit(s[i]) {
				ok = false
				return lo
			}
			x = x*10 + int(s[i]-'0')
		}
		if x < lo || x > hi {
			ok = false
		}
		return x
	}
	year, month := num(s[0:4], 0, 9999), num(s[5:7], 1, 12)
	day := num(s[8:10], 1, 31)
	hour, minute, sec := num(s[11:13], 0, 23), num(s[14:16], 0, 59), num(s[17:19], 0, 59)
	rest := s[19:]
	nsec := 0
	if len(rest) >= 2 && rest[0] == '.' && isDigit(rest[1]) {
		n := 1
		for ; n < len(rest) && isDigit(rest[n]); n++ {
			if n <= 9 {
				nsec = nsec*10 + int(rest[n]-'0')
			}
		}
		for k := n; k <= 9; k++ {
			nsec *= 10
		}
		rest = rest[n:]
	}
	offset := 0
	switch {
	case rest == "Z":
	case len(rest) == len("-07:00") && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		offset = (num(rest[1:3], 0, 23)*60 + num(rest[4:6], 0, 59)) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		ok = false
	}
	if !ok || s[10] != 'T' || s[13] != ':' || s[16] != ':' || day > daysIn(month, year) {
		t, ok := parseTime(s)
		if !ok {
			return Value{}, false
		}
		return TimeValue(t), true
	}
	unix := daysSinceEpoch(year, month, day)*86400 + int64(hour*3600+minute*60+sec-offset)
	return Value{kind: uint8(sqlengine.KindTimestamp), num: unix, nsec: int32(nsec)}, true
}

// daysIn returns the number of days of month in year (proleptic Gregorian calendar).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch returns the days from 1970-01-01 to the given date (proleptic Gregorian).
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	m := int64(month)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// infer types one JSON scalar or array. ok is false for null.
//   - bool → boolean; an integer literal that fits int64 → bigint; any other number → double (a
//     number beyond float64 stays text, as written);
//   - a string holding a full RFC 3339 date-time → timestamp; other strings → varchar;
//   - arrays → varchar holding the array as JSON text (an empty array is "[]").
func infer(n Node) (Value, bool) {
	switch n.Kind {
	case NodeNull:
		return Value{}, false
	case NodeTrue:
		return BoolValue(true), true
	case NodeFalse:
		return BoolValue(false), true
	case NodeNumber:
		if i, ok := smallInt(n.Text); ok {
			return IntValue(i), true
		}
		if f, ok := shortDecimal(n.Text); ok {
			return FloatValue(f), true
		}
		// A literal with a fraction or exponent never parses as an integer: skip the attempt.
		if !strings.ContainsAny(n.Text, ".eE") {
			if i, err := strconv.ParseInt(n.Text, 10, 64); err == nil {
				return IntValue(i), true
			}
		}
		if f, err := strconv.ParseFloat(n.Text, 64); err == nil {
			return FloatValue(f), true
		}
		return StringValue(n.Text), true
	case NodeString:
		if t, ok := timestamp(n.Text); ok {
			return t, true
		}
		return StringValue(stripNUL(n.Text)), true
	default:
		return StringValue(jsonText(n)), true
	}
}

// smallInt reads a JSON integer literal of at most 18 digits (which always fits an int64); ok is
// false for anything else, which infer reads with strconv.
func smallInt(s string) (int64, bool) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var x int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + int64(c-'0')
	}
	if len(digits) != len(s) {
		x = -x
	}
	return x, true
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// shortDecimal reads a JSON literal like 4.99 or -12.5: at most 15 digits around one '.', no
// exponent. Both the digits as an integer and the power of ten are exact in a float64, so their
// quotient is the correctly rounded value, the one strconv.ParseFloat gives (Clinger's fast
// path). ok is false for anything else, which infer reads with strconv.
func shortDecimal(s string) (float64, bool) {
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	var m int64
	n, frac := 0, -1
	for i := 0; i < len(digits); i++ {
		switch c := digits[i]; {
		case c >= '0' && c <= '9':
			m = m*10 + int64(c-'0')
			n++
		case c == '.' && frac < 0:
			frac = i
		default:
			return 0, false
		}
	}
	if frac < 0 || n == 0 || n > 15 {
		return 0, false
	}
	f := float64(m) / pow10[len(digits)-frac-1]
	if len(digits) != len(s) {
		f = -f
	}
	return f, true
}

// stripNUL removes U+0000, which PostgreSQL text cannot hold; DuckDB gets the same value so both
// engines store identical strings.
func stripNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}
