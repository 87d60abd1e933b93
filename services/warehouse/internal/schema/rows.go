package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

	common := map[string]Value{
		"id":      {sqlengine.KindString, msgID},
		"uuid_ts": {sqlengine.KindTimestamp, loadedAt},
	}
	received := loadedAt
	if t, ok := parseTime(str(ev, "receivedAt")); ok {
		received = t
	}
	common["received_at"] = Value{sqlengine.KindTimestamp, received}
	for key, col := range map[string]string{"sentAt": "sent_at", "timestamp": "timestamp", "originalTimestamp": "original_timestamp"} {
		if t, ok := parseTime(str(ev, key)); ok {
			common[col] = Value{sqlengine.KindTimestamp, t}
		}
	}
	for key, col := range map[string]string{"anonymousId": "anonymous_id", "userId": "user_id"} {
		if s := str(ev, key); s != "" {
			common[col] = Value{sqlengine.KindString, s}
		}
	}
	if ctx, ok := obj(ev, "context"); ok {
		cols := b.flatten(typ, "context", ctx, nil)
		for c, v := range cols {
			common[c] = v
		}
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
		base := with(common, map[string]Value{
			"event":      {sqlengine.KindString, table},
			"event_text": {sqlengine.KindString, text},
		})
		rows = append(rows, Row{Table: TableTracks, Columns: base})
		if table == "" {
			b.notice(TableTracks, "", text, "event name has no letters or digits: no event table")
			break
		}
		props := b.fields(table, ev, "properties", nil)
		rows = append(rows, Row{Table: table, Columns: with(base, props)})
	case "identify":
		traits := b.fields(TableIdentifies, ev, "traits", nil)
		rows = append(rows, Row{Table: TableIdentifies, Columns: with(common, traits)})
		if uid, ok := common["user_id"]; ok {
			user := with(map[string]Value{
				"id":          uid,
				"received_at": common["received_at"],
				"uuid_ts":     common["uuid_ts"],
			}, traits)
			rows = append(rows, Row{Table: TableUsers, Columns: user})
		}
	case "page", "screen":
		table := TablePages
		if typ == "screen" {
			table = TableScreens
		}
		extra := map[string]Value{}
		if name := str(ev, "name"); name != "" {
			extra["name"] = Value{sqlengine.KindString, name}
		}
		props := b.fields(table, ev, "properties", map[string]bool{"name": true})
		rows = append(rows, Row{Table: table, Columns: with(with(common, extra), props)})
	case "group":
		extra := map[string]Value{}
		if gid := str(ev, "groupId"); gid != "" {
			extra["group_id"] = Value{sqlengine.KindString, gid}
		}
		traits := b.fields(TableGroups, ev, "traits", map[string]bool{"group_id": true})
		rows = append(rows, Row{Table: TableGroups, Columns: with(with(common, extra), traits)})
		if gid, ok := extra["group_id"]; ok {
			account := with(map[string]Value{
				"id":          gid,
				"received_at": common["received_at"],
				"uuid_ts":     common["uuid_ts"],
			}, traits)
			rows = append(rows, Row{Table: TableAccounts, Columns: account})
		}
	case "alias":
		extra := map[string]Value{}
		if prev := str(ev, "previousId"); prev != "" {
			extra["previous_id"] = Value{sqlengine.KindString, prev}
		}
		rows = append(rows, Row{Table: TableAliases, Columns: with(common, extra)})
	default:
		return nil, nil, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, typ)
	}
	return rows, b.notices, nil
}

// builder collects notices while flattening one event.
type builder struct {
	notices []Notice
}

func (b *builder) notice(table, column, key, reason string) {
	b.notices = append(b.notices, Notice{Table: table, Column: column, Key: key, Reason: reason})
}

// fields flattens the object ev[key] (properties or traits) into un-prefixed columns, discarding
// system columns, context_* and the extra reserved names.
func (b *builder) fields(table string, ev Object, key string, reserved map[string]bool) map[string]Value {
	o, ok := obj(ev, key)
	if !ok {
		return nil
	}
	return b.flatten(table, "", o, reserved)
}

// flatten turns o into columns named prefix_key_subkey…; keys are snake-cased one by one.
func (b *builder) flatten(table, prefix string, o Object, reserved map[string]bool) map[string]Value {
	cols := map[string]Value{}
	from := map[string]string{} // column → key path that set it
	var walk func(prefix, path string, o Object)
	walk = func(prefix, path string, o Object) {
		for _, m := range o {
			name := prefix
			if part := Snake(m.Key); part != "" {
				if name != "" {
					name += "_"
				}
				name += part
			}
			keyPath := m.Key
			if path != "" {
				keyPath = path + "." + m.Key
			}
			if sub, ok := m.Value.(Object); ok {
				walk(name, keyPath, sub) // an empty object adds nothing
				continue
			}
			v, ok := infer(m.Value)
			if !ok {
				continue // null: no column
			}
			col := Ident(name)
			switch {
			case col == "":
				b.notice(table, "", keyPath, "name has no letters or digits")
			case prefix == "" && (systemColumns[col] || reserved[col] || strings.HasPrefix(col, "context_")):
				b.notice(table, col, keyPath, "collides with a reserved column: discarded")
			default:
				if prev, dup := from[col]; dup {
					b.notice(table, col, prev, fmt.Sprintf("key %q maps to the same column and comes later: it wins", keyPath))
				}
				cols[col] = v
				from[col] = keyPath
			}
		}
	}
	walk(prefix, "", o)
	return cols
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
	if len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
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
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return Value{sqlengine.KindInt, i}, true
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
