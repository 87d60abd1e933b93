package schema

import (
	"encoding/json"
	"errors"
	"fmt"
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

// Value is one typed column value. V is a string, int64, float64, bool or time.Time (UTC),
// matching Kind.
type Value struct {
	Kind sqlengine.ColumnKind
	V    any
}

// Row is one row for one table.
type Row struct {
	Table   string
	Columns map[string]Value
}

// ID returns the row's id column, which is the primary key of every table.
func (r Row) ID() string {
	s, _ := r.Columns["id"].V.(string)
	return s
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
// column, the last one in document order wins and a Notice names the loser (for an Object built
// with FromMap that is the lexicographically last key).
func Build(ev Object, loadedAt time.Time) ([]Row, []Notice, error) {
	loadedAt = loadedAt.UTC()
	typ := str(ev, "type")
	msgID := str(ev, "messageId")
	if msgID == "" {
		return nil, nil, fmt.Errorf("%w: no messageId", ErrInvalidEvent)
	}
	b := builder{}

	// Properties and traits never map to a column of common (system and context_* columns are
	// discarded), so rows are filled in place instead of merged from separate maps.
	ctx, hasCtx := obj(ev, "context")
	common := make(map[string]Value, 8+2*len(ctx))
	common["id"] = Value{sqlengine.KindString, msgID}
	common["uuid_ts"] = Value{sqlengine.KindTimestamp, loadedAt}
	received := loadedAt
	if t, ok := parseTime(str(ev, "receivedAt")); ok {
		received = t
	}
	common["received_at"] = Value{sqlengine.KindTimestamp, received}
	for _, kc := range timeColumns {
		if t, ok := parseTime(str(ev, kc[0])); ok {
			common[kc[1]] = Value{sqlengine.KindTimestamp, t}
		}
	}
	for _, kc := range idColumns {
		if s := str(ev, kc[0]); s != "" {
			common[kc[1]] = Value{sqlengine.KindString, s}
		}
	}
	if hasCtx {
		b.flatten(common, typ, "context", ctx, nil)
	}

	var rows []Row
	switch typ {
	case "track":
		text := str(ev, "event")
		if text == "" {
			return nil, nil, fmt.Errorf("%w: track without an event name", ErrInvalidEvent)
		}
		table := Ident(Snake(text))
		if reservedTables[table] {
			table = "_" + table
		}
		common["event"] = Value{sqlengine.KindString, table}
		common["event_text"] = Value{sqlengine.KindString, text}
		if table == "" {
			rows = append(rows, Row{Table: TableTracks, Columns: common})
			b.notice(TableTracks, "", text, "event name has no letters or digits: no event table")
			break
		}
		props, _ := obj(ev, "properties")
		row := copyMap(common, len(props))
		b.flatten(row, table, "", props, nil)
		rows = append(rows, Row{Table: TableTracks, Columns: common}, Row{Table: table, Columns: row})
	case "identify":
		traits, _ := obj(ev, "traits")
		var user map[string]Value
		if uid, ok := common["user_id"]; ok {
			user = make(map[string]Value, 3+len(traits))
			user["id"] = uid
			user["received_at"] = common["received_at"]
			user["uuid_ts"] = common["uuid_ts"]
		}
		if user == nil {
			b.flatten(common, TableIdentifies, "", traits, nil)
			rows = append(rows, Row{Table: TableIdentifies, Columns: common})
			break
		}
		b.flatten(user, TableIdentifies, "", traits, nil)
		moveTraits(common, user)
		rows = append(rows, Row{Table: TableIdentifies, Columns: common}, Row{Table: TableUsers, Columns: user})
	case "page", "screen":
		table := TablePages
		if typ == "screen" {
			table = TableScreens
		}
		if name := str(ev, "name"); name != "" {
			common["name"] = Value{sqlengine.KindString, name}
		}
		props, _ := obj(ev, "properties")
		b.flatten(common, table, "", props, reservedName)
		rows = append(rows, Row{Table: table, Columns: common})
	case "group":
		gid := str(ev, "groupId")
		if gid != "" {
			common["group_id"] = Value{sqlengine.KindString, gid}
		}
		traits, _ := obj(ev, "traits")
		var account map[string]Value
		if gid != "" {
			account = make(map[string]Value, 3+len(traits))
			account["id"] = Value{sqlengine.KindString, gid}
			account["received_at"] = common["received_at"]
			account["uuid_ts"] = common["uuid_ts"]
		}
		if account == nil {
			b.flatten(common, TableGroups, "", traits, reservedGroupID)
			rows = append(rows, Row{Table: TableGroups, Columns: common})
			break
		}
		b.flatten(account, TableGroups, "", traits, reservedGroupID)
		moveTraits(common, account)
		rows = append(rows, Row{Table: TableGroups, Columns: common}, Row{Table: TableAccounts, Columns: account})
	case "alias":
		if prev := str(ev, "previousId"); prev != "" {
			common["previous_id"] = Value{sqlengine.KindString, prev}
		}
		rows = append(rows, Row{Table: TableAliases, Columns: common})
	default:
		return nil, nil, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, typ)
	}
	return rows, b.notices, nil
}

// The envelope's timestamp and identity fields and their columns.
var (
	timeColumns = [][2]string{{"sentAt", "sent_at"}, {"timestamp", "timestamp"}, {"originalTimestamp", "original_timestamp"}}
	idColumns   = [][2]string{{"anonymousId", "anonymous_id"}, {"userId", "user_id"}}
)

// Names properties and traits may not take besides the system columns, per call type.
var (
	reservedName    = map[string]bool{"name": true}
	reservedGroupID = map[string]bool{"group_id": true}
)

// copyMap returns a copy of m with room for extra more entries.
func copyMap(m map[string]Value, extra int) map[string]Value {
	out := make(map[string]Value, len(m)+extra)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// moveTraits copies into dst the columns of traits other than the three owner columns (id,
// received_at, uuid_ts) a users or accounts row starts with.
func moveTraits(dst, owner map[string]Value) {
	if len(owner) == 3 {
		return
	}
	for c, v := range owner {
		switch c {
		case "id", "received_at", "uuid_ts":
		default:
			dst[c] = v
		}
	}
}

// builder collects notices while flattening one event.
type builder struct {
	notices []Notice
}

func (b *builder) notice(table, column, key, reason string) {
	b.notices = append(b.notices, Notice{Table: table, Column: column, Key: key, Reason: reason})
}

// flatten adds the columns of o to dst, named prefix_key_subkey…; keys are snake-cased one by one.
// Without a prefix (properties, traits) system columns, context_* and reserved names are discarded
// with a notice. When several keys map to one column the last wins, with a notice naming the key it
// replaced. dst must not hold beforehand any name flatten may produce (Build's callers guarantee it:
// properties and traits never take a system, context_* or reserved name), so a name already in dst
// is a collision within o.
func (b *builder) flatten(dst map[string]Value, table, prefix string, o Object, reserved map[string]bool) {
	leaf := 0
	b.walk(o, prefix, nil, reserved, func(col string, path []string, key string, v Value) bool {
		leaf++
		if _, dup := dst[col]; dup {
			b.notice(table, col, b.earlierKey(o, prefix, reserved, col, leaf),
				fmt.Sprintf("key %q maps to the same column and comes later: it wins", keyPath(path, key)))
		}
		dst[col] = v
		return true
	}, table)
}

// walk visits the leaves of o in document order that become a column, calling f with the column,
// the key path and the typed value, until f returns false. With a table it records the notices of
// keys that become no column.
func (b *builder) walk(o Object, prefix string, path []string, reserved map[string]bool, f func(col string, path []string, key string, v Value) bool, table string) bool {
	for _, m := range o {
		if sub, ok := m.Value.(Object); ok {
			if !b.walk(sub, columnName(prefix, m.Key), append(path, m.Key), reserved, f, table) { // an empty object adds nothing
				return false
			}
			continue
		}
		v, ok := infer(m.Value)
		if !ok {
			continue // null: no column
		}
		col := Ident(columnName(prefix, m.Key))
		switch {
		case col == "":
			if table != "" {
				b.notice(table, "", keyPath(path, m.Key), "name has no letters or digits")
			}
		case prefix == "" && (systemColumns[col] || reserved[col] || strings.HasPrefix(col, "context_")):
			if table != "" {
				b.notice(table, col, keyPath(path, m.Key), "collides with a reserved column: discarded")
			}
		default:
			if !f(col, path, m.Key, v) {
				return false
			}
		}
	}
	return true
}

// earlierKey returns the key path of the last column-producing leaf of o before the n-th one
// (1-based, in walk order) that maps to col: the key a later one replaced. Only called on a
// collision, which is rare, so it walks o again instead of recording every key path.
func (b *builder) earlierKey(o Object, prefix string, reserved map[string]bool, col string, n int) string {
	var found string
	i := 0
	quiet := &builder{}
	quiet.walk(o, prefix, nil, reserved, func(c string, path []string, key string, _ Value) bool {
		i++
		if i >= n {
			return false
		}
		if c == col {
			found = keyPath(path, key)
		}
		return true
	}, "")
	return found
}

// columnName joins a prefix and the snake_case form of key with "_" (a key without letters or
// digits adds nothing). Results are cached: events of one source repeat the same keys.
func columnName(prefix, key string) string {
	k := nameKey{prefix, key}
	names.RLock()
	name, ok := names.m[k]
	names.RUnlock()
	if ok {
		return name
	}
	name = prefix
	if part := Snake(key); part != "" {
		if name != "" {
			name += "_"
		}
		name += part
	}
	names.Lock()
	if len(names.m) < maxCachedNames {
		names.m[k] = name
	}
	names.Unlock()
	return name
}

type nameKey struct{ prefix, key string }

// maxCachedNames bounds the column-name cache; names past it are computed each time.
const maxCachedNames = 1 << 14

var names = struct {
	sync.RWMutex
	m map[nameKey]string
}{m: map[nameKey]string{}}

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

// str returns ev[key] as a string; numbers and booleans are rendered as text (userId may be a
// number), anything else gives "".
func str(ev Object, key string) string {
	v, _ := ev.Get(key)
	switch x := v.(type) {
	case string:
		return stripNUL(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// obj returns ev[key] when it is an object.
func obj(ev Object, key string) (Object, bool) {
	v, _ := ev.Get(key)
	o, ok := v.(Object)
	return o, ok
}

// with returns a new map holding a's entries overlaid by b's.
func with(a, b map[string]Value) map[string]Value {
	out := make(map[string]Value, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// parseTime accepts a full RFC 3339 date-time (with optional fraction and any offset) and returns
// it in UTC. Dates alone ("2024-01-01") are not timestamps.
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

// infer types one JSON scalar or array. ok is false for null.
//   - bool → boolean; an integer json.Number that fits int64 → bigint; any other number → double;
//   - a string holding a full RFC 3339 date-time → timestamp; other strings → varchar;
//   - arrays → varchar holding the array as JSON text (an empty array is "[]").
func infer(v any) (Value, bool) {
	switch x := v.(type) {
	case nil:
		return Value{}, false
	case bool:
		return Value{sqlengine.KindBool, x}, true
	case json.Number:
		// A literal with a fraction or exponent never parses as an integer: skip the attempt.
		if !strings.ContainsAny(x.String(), ".eE") {
			if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
				return Value{sqlengine.KindInt, i}, true
			}
		}
		if f, err := strconv.ParseFloat(x.String(), 64); err == nil {
			return Value{sqlengine.KindFloat, f}, true
		}
		return Value{sqlengine.KindString, x.String()}, true
	case float64:
		return Value{sqlengine.KindFloat, x}, true
	case int:
		return Value{sqlengine.KindInt, int64(x)}, true
	case int64:
		return Value{sqlengine.KindInt, x}, true
	case string:
		if t, ok := parseTime(x); ok {
			return Value{sqlengine.KindTimestamp, t}, true
		}
		return Value{sqlengine.KindString, stripNUL(x)}, true
	default:
		return Value{sqlengine.KindString, jsonText(x)}, true
	}
}

// stripNUL removes U+0000, which PostgreSQL text cannot hold; DuckDB gets the same value so both
// engines store identical strings.
func stripNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "")
}
