package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MaxViewColumns is how many property columns a view may show (Segment's limit).
const MaxViewColumns = 5

// pageSpec is what a saved view is validated against.
type pageSpec struct {
	columns  []string
	validate func(sort string, filters []string) error
}

var pages = map[string]pageSpec{
	"sources": {columns: SourceColumns, validate: func(s string, f []string) error {
		_, _, err := sourceTable.run(nil, Query{Sort: s, Filters: f})
		return err
	}},
	"destinations": {columns: DestinationColumns, validate: func(s string, f []string) error {
		_, _, err := destinationTable.run(nil, Query{Sort: s, Filters: f})
		return err
	}},
}

func pageOf(name string) (pageSpec, error) {
	p, ok := pages[name]
	if !ok {
		return pageSpec{}, invalid("page", "VIEW_PAGE_UNKNOWN", "unknown page %q: views exist for sources and destinations", name)
	}
	return p, nil
}

func viewKey(userID, page string) string { return userID + "." + page }

// GetView returns the caller's saved view of a page, or the default view
// (the first five columns, newest first, no filters) with revision 0.
func (c *Catalog) GetView(p *catalogv1.Principal, page string) (*catalogv1.View, []string, error) {
	spec, err := pageOf(page)
	if err != nil {
		return nil, nil, err
	}
	if e, ok := c.get(KindView, viewKey(p.GetUserId(), page)); ok {
		v := proto.Clone(e.msg).(*catalogv1.View)
		v.Revision = e.rev
		return v, slices.Clone(spec.columns), nil
	}
	return &catalogv1.View{Page: page, UserId: p.GetUserId(), Columns: slices.Clone(spec.columns[:MaxViewColumns]), Sort: "createdAt:desc", Filters: []string{}}, slices.Clone(spec.columns), nil
}

// PutView saves the caller's view of a page. Any role may save its own
// views: they change nothing in the workspace.
func (c *Catalog) PutView(ctx context.Context, p *catalogv1.Principal, req *catalogv1.PutViewRequest) (*catalogv1.View, error) {
	spec, err := pageOf(req.GetPage())
	if err != nil {
		return nil, err
	}
	cols := req.GetColumns()
	if len(cols) > MaxViewColumns {
		return nil, invalid("columns", "VIEW_TOO_MANY_COLUMNS", "a view shows at most %d columns, got %d", MaxViewColumns, len(cols))
	}
	for i, col := range cols {
		if !slices.Contains(spec.columns, col) {
			return nil, invalid(fmt.Sprintf("columns[%d]", i), "VIEW_COLUMN_UNKNOWN", "unknown column %q: the %s page has the columns %s", col, req.GetPage(), strings.Join(spec.columns, ", "))
		}
		if slices.Index(cols, col) != i {
			return nil, invalid(fmt.Sprintf("columns[%d]", i), "VIEW_COLUMN_DUPLICATE", "column %q appears twice", col)
		}
	}
	sort := req.GetSort()
	if sort == "" {
		sort = "createdAt:desc"
	}
	if err := spec.validate(sort, req.GetFilters()); err != nil {
		return nil, err
	}
	key := viewKey(p.GetUserId(), req.GetPage())
	v := &catalogv1.View{
		Page: req.GetPage(), UserId: p.GetUserId(), Columns: cols, Sort: sort,
		Filters: req.GetFilters(), UpdatedAt: timestamppb.New(c.now()),
	}
	if v.Columns == nil {
		v.Columns = []string{}
	}
	if v.Filters == nil {
		v.Filters = []string{}
	}
	var rev uint64
	if e, ok := c.get(KindView, key); ok || req.GetRevision() != 0 {
		expect := req.GetRevision()
		if expect != 0 && (!ok || e.rev != expect) {
			return nil, &RevisionError{Kind: KindView, ID: req.GetPage(), Want: expect, Current: e.rev}
		}
		// A whole-view replace: without a revision the last save wins.
		base := e.rev
		if expect != 0 {
			base = expect
		}
		rev, err = c.storeUpdate(ctx, KindView, key, v, base)
		if err != nil && expect != 0 {
			return nil, &RevisionError{Kind: KindView, ID: req.GetPage(), Want: expect}
		}
		if err != nil {
			if err := c.refresh(ctx, KindView, key); err != nil {
				return nil, err
			}
			cur, _ := c.get(KindView, key)
			if rev, err = c.storeUpdate(ctx, KindView, key, v, cur.rev); err != nil {
				return nil, err
			}
		}
	} else if rev, err = c.createRev(ctx, KindView, key, v); err != nil {
		return nil, err
	}
	v.Revision = rev
	return v, nil
}
