package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The list-page query language, shared by REST (query parameters) and gRPC
// (the same strings in the request):
//
//	sort=<column>[:asc|:desc]          default createdAt:desc
//	filter=<column>:<op>:<value>        repeatable; every filter must match
//
// Operators: eq, in (comma-separated values), contains (case-insensitive
// substring, text columns), gt, gte, lt, lte (dates and counts). Dates are
// RFC 3339 timestamps or YYYY-MM-DD days (UTC; "lte:2026-01-31" includes
// the whole day).

// colType says which operators a column supports and how it sorts.
type colType int

const (
	colText  colType = iota // eq, in, contains; sorts case-insensitively
	colEnum                 // eq, in
	colCount                // eq, in, gt, gte, lt, lte; contains matches names
	colTime                 // gt, gte, lt, lte, eq
	colBool                 // eq
)

// column is one sortable, filterable column of a list page over rows of R.
type column[R any] struct {
	name string
	typ  colType
	// text is the value of text, enum and bool columns.
	text func(R) string
	// num is the value of count and time (Unix nanoseconds) columns.
	num func(R) int64
	// alt are more texts eq/in/contains match (e.g. an id beside a name).
	alt func(R) []string
	// values are the allowed values of an enum column.
	values []string
}

// table is the column set of one list page.
type table[R any] struct {
	page    string
	columns []column[R]
	// viewColumns are the property columns a saved view may show.
	viewColumns []string
	id          func(R) string
}

func (t *table[R]) column(name string) (column[R], bool) {
	for _, c := range t.columns {
		if c.name == name {
			return c, true
		}
	}
	return column[R]{}, false
}

func (t *table[R]) names() string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.name
	}
	return strings.Join(out, ", ")
}

// sortSpec is a parsed sort.
type sortSpec struct {
	col  string
	desc bool
}

func (s sortSpec) String() string {
	if s.desc {
		return s.col + ":desc"
	}
	return s.col + ":asc"
}

func (t *table[R]) parseSort(raw string) (sortSpec, error) {
	if raw == "" {
		return sortSpec{col: "createdAt", desc: true}, nil
	}
	name, dir, _ := strings.Cut(raw, ":")
	if strings.HasPrefix(name, "-") && dir == "" {
		name, dir = name[1:], "desc"
	}
	if _, ok := t.column(name); !ok {
		return sortSpec{}, invalid("sort", "LIST_COLUMN_UNKNOWN", "unknown column %q; the %s page sorts by: %s", name, t.page, t.names())
	}
	switch dir {
	case "", "asc":
		return sortSpec{col: name}, nil
	case "desc":
		return sortSpec{col: name, desc: true}, nil
	}
	return sortSpec{}, invalid("sort", "SORT_DIRECTION_INVALID", "direction %q must be asc or desc", dir)
}

// filter is one parsed filter.
type filter[R any] struct {
	match func(R) bool
}

func (t *table[R]) parseFilters(raw []string) ([]filter[R], error) {
	out := make([]filter[R], 0, len(raw))
	for i, f := range raw {
		field := fmt.Sprintf("filter[%d]", i)
		parts := strings.SplitN(f, ":", 3)
		if len(parts) != 3 {
			return nil, invalid(field, "FILTER_SYNTAX", "%q must be <column>:<op>:<value>, e.g. type:eq:http-api", f)
		}
		c, ok := t.column(parts[0])
		if !ok {
			return nil, invalid(field, "LIST_COLUMN_UNKNOWN", "unknown column %q; the %s page filters by: %s", parts[0], t.page, t.names())
		}
		m, err := c.matcher(field, parts[1], parts[2])
		if err != nil {
			return nil, err
		}
		out = append(out, filter[R]{match: m})
	}
	return out, nil
}

func badOp(field string, c colType, name, op string) error {
	ops := map[colType]string{colText: "eq, in, contains", colEnum: "eq, in", colCount: "eq, in, contains, gt, gte, lt, lte", colTime: "eq, gt, gte, lt, lte", colBool: "eq"}[c]
	return invalid(field, "FILTER_OPERATOR_INVALID", "column %s supports %s, not %q", name, ops, op)
}

func (c column[R]) texts(r R) []string {
	var out []string
	if c.text != nil {
		out = append(out, c.text(r))
	}
	if c.alt != nil {
		out = append(out, c.alt(r)...)
	}
	return out
}

func (c column[R]) matcher(field, op, value string) (func(R) bool, error) {
	switch c.typ {
	case colText, colEnum, colBool:
		var vals []string
		switch op {
		case "eq":
			vals = []string{value}
		case "in":
			vals = strings.Split(value, ",")
		case "contains":
			if c.typ != colText {
				return nil, badOp(field, c.typ, c.name, op)
			}
			needle := strings.ToLower(value)
			return func(r R) bool {
				for _, s := range c.texts(r) {
					if strings.Contains(strings.ToLower(s), needle) {
						return true
					}
				}
				return false
			}, nil
		default:
			return nil, badOp(field, c.typ, c.name, op)
		}
		if c.typ == colBool && (op != "eq" || (value != "true" && value != "false")) {
			return nil, invalid(field, "FILTER_VALUE_INVALID", "column %s takes eq:true or eq:false", c.name)
		}
		if c.typ == colEnum {
			for i, v := range vals {
				// Accept the proto enum names too (ENVIRONMENT_DEV).
				v = strings.ToLower(strings.TrimPrefix(strings.ToUpper(v), "ENVIRONMENT_"))
				vals[i] = v
				if !slices.Contains(c.values, v) {
					return nil, invalid(field, "FILTER_VALUE_INVALID", "column %s has the values %s, not %q", c.name, strings.Join(c.values, ", "), v)
				}
			}
		}
		return func(r R) bool {
			for _, s := range c.texts(r) {
				for _, v := range vals {
					if strings.EqualFold(s, v) {
						return true
					}
				}
			}
			return false
		}, nil
	case colCount:
		if op == "contains" {
			needle := strings.ToLower(value)
			return func(r R) bool {
				for _, s := range c.alt(r) {
					if strings.Contains(strings.ToLower(s), needle) {
						return true
					}
				}
				return false
			}, nil
		}
		var nums []int64
		for _, v := range strings.Split(value, ",") {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, invalid(field, "FILTER_VALUE_INVALID", "column %s takes whole numbers, not %q", c.name, v)
			}
			nums = append(nums, n)
		}
		if op != "in" && len(nums) != 1 {
			return nil, invalid(field, "FILTER_VALUE_INVALID", "operator %s takes one number", op)
		}
		cmp, err := numCompare(field, c, op, nums[0], nums[0]+1)
		if err != nil {
			return nil, err
		}
		if op == "in" {
			return func(r R) bool { return slices.Contains(nums, c.num(r)) }, nil
		}
		return cmp, nil
	case colTime:
		t, next, err := parseDate(value)
		if err != nil {
			return nil, invalid(field, "FILTER_VALUE_INVALID", "column %s takes RFC 3339 timestamps or YYYY-MM-DD dates, not %q", c.name, value)
		}
		return numCompare(field, c, op, t, next)
	}
	return nil, badOp(field, c.typ, c.name, op)
}

// numCompare compares a column's number with v; next is the first value
// after v's unit (v+1 for counts, the next day for a date), so lte and gt
// include or exclude a whole day.
func numCompare[R any](field string, c column[R], op string, v, next int64) (func(R) bool, error) {
	switch op {
	case "eq":
		return func(r R) bool { n := c.num(r); return n >= v && n < next }, nil
	case "gt":
		return func(r R) bool { return c.num(r) >= next }, nil
	case "gte":
		return func(r R) bool { return c.num(r) >= v }, nil
	case "lt":
		return func(r R) bool { return c.num(r) < v }, nil
	case "lte":
		return func(r R) bool { return c.num(r) < next }, nil
	}
	return nil, badOp(field, c.typ, c.name, op)
}

// parseDate parses an RFC 3339 timestamp (unit: 1 ns) or a YYYY-MM-DD day
// (unit: the day) into Unix nanoseconds and the start of the next unit.
func parseDate(s string) (int64, int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), t.UnixNano() + 1, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, 0, err
	}
	return t.UnixNano(), t.AddDate(0, 0, 1).UnixNano(), nil
}

// sortKey is a row's position in a sort: by n, then s, then id.
type sortKey struct {
	N  int64  `json:"n,omitempty"`
	S  string `json:"s,omitempty"`
	ID string `json:"id"`
}

func (a sortKey) less(b sortKey) bool {
	if a.N != b.N {
		return a.N < b.N
	}
	if a.S != b.S {
		return a.S < b.S
	}
	return a.ID < b.ID
}

func (t *table[R]) key(c column[R], r R) sortKey {
	k := sortKey{ID: t.id(r)}
	switch c.typ {
	case colCount, colTime:
		k.N = c.num(r)
	default:
		k.S = strings.ToLower(c.text(r))
	}
	return k
}

// cursor is the decoded opaque pagination cursor: the sort it belongs to and
// the key of the last row of the previous page (or Start for the first page).
type cursor struct {
	Sort  string  `json:"o"`
	After sortKey `json:"a"`
	Start bool    `json:"f,omitempty"`
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(b, &c)
	return c, err
}

// Page is one page of a list.
type Page struct {
	Count  int32
	Cursor string
}

// PageInfo describes a returned page.
type PageInfo struct {
	Current  string
	Next     string
	Previous string
	Total    int32
}

// Query is a list-page request: sort, filters and page.
type Query struct {
	Sort    string
	Filters []string
	Page    Page
}

func pageCount(p Page) (int, error) {
	switch {
	case p.Count == 0:
		return 50, nil
	case p.Count < 0 || p.Count > 200:
		return 0, invalid("pagination.count", "PAGINATION_COUNT_RANGE", "must be between 1 and 200, got %d", p.Count)
	}
	return int(p.Count), nil
}

// run filters, sorts and pages rows. Pagination is by key, not offset: the
// cursor holds the sort key and id of the last row returned, so rows created,
// deleted or changed elsewhere in the list never shift the next page; a row
// whose own sort value changes between two pages may move across the cursor.
func (t *table[R]) run(rows []R, q Query) ([]R, PageInfo, error) {
	spec, err := t.parseSort(q.Sort)
	if err != nil {
		return nil, PageInfo{}, err
	}
	filters, err := t.parseFilters(q.Filters)
	if err != nil {
		return nil, PageInfo{}, err
	}
	count, err := pageCount(q.Page)
	if err != nil {
		return nil, PageInfo{}, err
	}
	var cur cursor
	if q.Page.Cursor != "" {
		if cur, err = decodeCursor(q.Page.Cursor); err != nil {
			return nil, PageInfo{}, invalid("pagination.cursor", "PAGINATION_CURSOR_INVALID", "is not a cursor this API returned")
		}
		if cur.Sort != spec.String() {
			return nil, PageInfo{}, invalid("pagination.cursor", "PAGINATION_CURSOR_INVALID", "belongs to sort %s, not %s: start again without a cursor", cur.Sort, spec)
		}
	}
	col, _ := t.column(spec.col)
	type keyed struct {
		r R
		k sortKey
	}
	kept := make([]keyed, 0, len(rows))
rowLoop:
	for _, r := range rows {
		for _, f := range filters {
			if !f.match(r) {
				continue rowLoop
			}
		}
		kept = append(kept, keyed{r: r, k: t.key(col, r)})
	}
	less := func(a, b sortKey) bool {
		if spec.desc {
			return b.less(a)
		}
		return a.less(b)
	}
	sort.Slice(kept, func(i, j int) bool { return less(kept[i].k, kept[j].k) })
	start := 0
	if q.Page.Cursor != "" && !cur.Start {
		start = sort.Search(len(kept), func(i int) bool { return less(cur.After, kept[i].k) })
	}
	end := min(start+count, len(kept))
	info := PageInfo{Current: q.Page.Cursor, Total: int32(len(kept))}
	if end < len(kept) {
		info.Next = encodeCursor(cursor{Sort: spec.String(), After: kept[end-1].k})
	}
	if start > 0 {
		if prev := start - count; prev <= 0 {
			info.Previous = encodeCursor(cursor{Sort: spec.String(), Start: true})
		} else {
			info.Previous = encodeCursor(cursor{Sort: spec.String(), After: kept[prev-1].k})
		}
	}
	out := make([]R, 0, end-start)
	for _, k := range kept[start:end] {
		out = append(out, k.r)
	}
	return out, info, nil
}
