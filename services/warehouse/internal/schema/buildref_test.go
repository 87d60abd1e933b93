package schema

// The implementation of Build before it was optimized (maps of columns, one flatten per object
// merged afterwards), kept as the oracle of TestBuildMatchesReference: the fast Build must return
// exactly the same rows (as sets of columns) and notices.

import (
	"fmt"
	"strings"
	"time"
)

// refRow is a row as the reference builds it.
type refRow struct {
	Table   string
	Columns map[string]Value
}

// asRefRows converts Build's rows to the reference's form, failing on a column given twice or an
// id that is not first.
func asRefRows(rows []Row) ([]refRow, error) {
	var out []refRow
	for _, r := range rows {
		m := make(map[string]Value, len(r.Columns))
		for i, c := range r.Columns {
			if _, dup := m[c.Name]; dup {
				return nil, fmt.Errorf("%s: column %s given twice", r.Table, c.Name)
			}
			if (c.Name == "id") != (i == 0) {
				return nil, fmt.Errorf("%s: id is not the first column", r.Table)
			}
			m[c.Name] = c.Value
		}
		out = append(out, refRow{Table: r.Table, Columns: m})
	}
	return out, nil
}

func refBuild(ev Object, loadedAt time.Time) ([]refRow, []Notice, error) {
	loadedAt = loadedAt.UTC()
	typ := str(ev, "type")
	msgID := str(ev, "messageId")
	if msgID == "" {
		return nil, nil, fmt.Errorf("%w: no messageId", ErrInvalidEvent)
	}
	b := refBuilder{}

	common := map[string]Value{
		"id":      StringValue(msgID),
		"uuid_ts": TimeValue(loadedAt),
	}
	received := loadedAt
	if t, ok := parseTime(str(ev, "receivedAt")); ok {
		received = t
	}
	common["received_at"] = TimeValue(received)
	for key, col := range map[string]string{"sentAt": "sent_at", "timestamp": "timestamp", "originalTimestamp": "original_timestamp"} {
		if t, ok := parseTime(str(ev, key)); ok {
			common[col] = TimeValue(t)
		}
	}
	for key, col := range map[string]string{"anonymousId": "anonymous_id", "userId": "user_id"} {
		if s := str(ev, key); s != "" {
			common[col] = StringValue(s)
		}
	}
	if ctx, ok := obj(ev, "context"); ok {
		cols := b.flatten(typ, "context", ctx, nil)
		for c, v := range cols {
			common[c] = v
		}
	}

	var rows []refRow
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
		base := refWith(common, map[string]Value{
			"event":      StringValue(table),
			"event_text": StringValue(text),
		})
		rows = append(rows, refRow{Table: TableTracks, Columns: base})
		if table == "" {
			b.notice(TableTracks, "", text, "event name has no letters or digits: no event table")
			break
		}
		props := b.fields(table, ev, "properties", nil)
		rows = append(rows, refRow{Table: table, Columns: refWith(base, props)})
	case "identify":
		traits := b.fields(TableIdentifies, ev, "traits", nil)
		rows = append(rows, refRow{Table: TableIdentifies, Columns: refWith(common, traits)})
		if uid, ok := common["user_id"]; ok {
			user := refWith(map[string]Value{
				"id":          uid,
				"received_at": common["received_at"],
				"uuid_ts":     common["uuid_ts"],
			}, traits)
			rows = append(rows, refRow{Table: TableUsers, Columns: user})
		}
	case "page", "screen":
		table := TablePages
		if typ == "screen" {
			table = TableScreens
		}
		extra := map[string]Value{}
		if name := str(ev, "name"); name != "" {
			extra["name"] = StringValue(name)
		}
		props := b.fields(table, ev, "properties", map[string]bool{"name": true})
		rows = append(rows, refRow{Table: table, Columns: refWith(refWith(common, extra), props)})
	case "group":
		extra := map[string]Value{}
		if gid := str(ev, "groupId"); gid != "" {
			extra["group_id"] = StringValue(gid)
		}
		traits := b.fields(TableGroups, ev, "traits", map[string]bool{"group_id": true})
		rows = append(rows, refRow{Table: TableGroups, Columns: refWith(refWith(common, extra), traits)})
		if gid, ok := extra["group_id"]; ok {
			account := refWith(map[string]Value{
				"id":          gid,
				"received_at": common["received_at"],
				"uuid_ts":     common["uuid_ts"],
			}, traits)
			rows = append(rows, refRow{Table: TableAccounts, Columns: account})
		}
	case "alias":
		extra := map[string]Value{}
		if prev := str(ev, "previousId"); prev != "" {
			extra["previous_id"] = StringValue(prev)
		}
		rows = append(rows, refRow{Table: TableAliases, Columns: refWith(common, extra)})
	default:
		return nil, nil, fmt.Errorf("%w: unknown type %q", ErrInvalidEvent, typ)
	}
	return rows, b.notices, nil
}

// builder collects notices while flattening one event.
type refBuilder struct {
	notices []Notice
}

func (b *refBuilder) notice(table, column, key, reason string) {
	b.notices = append(b.notices, Notice{Table: table, Column: column, Key: key, Reason: reason})
}

// fields flattens the object ev[key] (properties or traits) into un-prefixed columns, discarding
// system columns, context_* and the extra reserved names.
func (b *refBuilder) fields(table string, ev Object, key string, reserved map[string]bool) map[string]Value {
	o, ok := obj(ev, key)
	if !ok {
		return nil
	}
	return b.flatten(table, "", o, reserved)
}

// flatten turns o into columns named prefix_key_subkey…; keys are snake-cased one by one.
func (b *refBuilder) flatten(table, prefix string, o Object, reserved map[string]bool) map[string]Value {
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
			if m.Value.Kind == NodeObject {
				walk(name, keyPath, m.Value.Members) // an empty object adds nothing
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

// refWith returns a new map holding a's entries overlaid by b's.
func refWith(a, b map[string]Value) map[string]Value {
	out := make(map[string]Value, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// str returns ev[key] as a string; numbers and booleans are rendered as text (userId may be a
// number), anything else gives "".
func str(ev Object, key string) string {
	v, _ := ev.Get(key)
	return text(v)
}

// obj returns ev[key] when it is an object.
func obj(ev Object, key string) (Object, bool) {
	v, _ := ev.Get(key)
	return v.Members, v.Kind == NodeObject
}
