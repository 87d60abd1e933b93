package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// sourceRow is one row of the Sources page.
type sourceRow struct {
	src   *catalogv1.Source
	rev   uint64
	dests []*catalogv1.Destination
	email string
}

func statusText(enabled bool) string {
	if enabled {
		return "enabled"
	}
	return "disabled"
}

func envText(e catalogv1.Environment) string {
	switch e {
	case catalogv1.Environment_ENVIRONMENT_DEV:
		return "dev"
	case catalogv1.Environment_ENVIRONMENT_PROD:
		return "prod"
	}
	return ""
}

// SourceColumns are the Sources page's property columns, in page order.
var SourceColumns = []string{"status", "environment", "destinations", "type", "category", "createdAt", "createdBy"}

// DestinationColumns are the Destinations page's property columns.
var DestinationColumns = []string{"status", "createdAt", "type", "sources", "category"}

var sourceTable = &table[sourceRow]{
	page:        "sources",
	viewColumns: SourceColumns,
	id:          func(r sourceRow) string { return r.src.GetId() },
	columns: []column[sourceRow]{
		{name: "name", typ: colText, text: func(r sourceRow) string { return r.src.GetName() }, alt: func(r sourceRow) []string { return []string{r.src.GetSlug()} }},
		{name: "status", typ: colEnum, values: []string{"enabled", "disabled"}, text: func(r sourceRow) string { return statusText(r.src.GetEnabled()) }},
		{name: "environment", typ: colEnum, values: []string{"dev", "prod"}, text: func(r sourceRow) string { return envText(r.src.GetEnvironment()) }},
		{name: "destinations", typ: colCount, num: func(r sourceRow) int64 { return int64(len(r.dests)) }, alt: func(r sourceRow) []string {
			out := make([]string, 0, 2*len(r.dests))
			for _, d := range r.dests {
				out = append(out, d.GetName(), d.GetType())
			}
			return out
		}},
		{name: "type", typ: colText, text: func(r sourceRow) string { return r.src.GetType() }},
		{name: "category", typ: colText, text: func(r sourceRow) string { return r.src.GetCategory() }},
		{name: "createdAt", typ: colTime, num: func(r sourceRow) int64 { return ts(r.src.GetCreatedAt()) }},
		{name: "createdBy", typ: colText, text: func(r sourceRow) string { return r.email }, alt: func(r sourceRow) []string { return []string{r.src.GetCreatedBy()} }},
		{name: "lifecycleExempt", typ: colBool, text: func(r sourceRow) string { return fmt.Sprint(r.src.GetLifecycleExempt()) }},
	},
}

// ListSources returns one page of the Sources page: filtered, sorted and
// paginated by key (see Query).
func (c *Catalog) ListSources(p *catalogv1.Principal, q Query) ([]*catalogv1.Source, PageInfo, error) {
	v := c.view(p.GetWorkspaceId())
	rows := make([]sourceRow, 0, len(v.sources))
	for _, e := range v.sources {
		s := e.msg.(*catalogv1.Source)
		rows = append(rows, sourceRow{src: s, rev: e.rev, dests: v.destsBySource[s.GetId()], email: v.emails[s.GetCreatedBy()]})
	}
	page, info, err := sourceTable.run(rows, q)
	if err != nil {
		return nil, PageInfo{}, err
	}
	out := make([]*catalogv1.Source, len(page))
	for i, r := range page {
		s := proto.Clone(r.src).(*catalogv1.Source)
		v.fillSource(s, r.rev, p)
		out[i] = s
	}
	return out, info, nil
}

// GetSource returns one of the principal's sources.
func (c *Catalog) GetSource(p *catalogv1.Principal, id string) (*catalogv1.Source, error) {
	if id == "" {
		return nil, invalid("sourceId", "REQUIRED", "is required")
	}
	v := c.viewOf(p.GetWorkspaceId(), id)
	e, ok := v.sources[id]
	if !ok {
		return nil, &NotFoundError{Kind: KindSource, ID: id}
	}
	s := proto.Clone(e.msg).(*catalogv1.Source)
	v.fillSource(s, e.rev, p)
	return s, nil
}

func (c *Catalog) sourceOut(p *catalogv1.Principal, s *catalogv1.Source, rev uint64) *catalogv1.Source {
	out := proto.Clone(s).(*catalogv1.Source)
	c.viewOf(s.GetWorkspaceId(), s.GetId()).fillSource(out, rev, p)
	return out
}

// CreateSource validates and stores a new source with one write key.
func (c *Catalog) CreateSource(ctx context.Context, p *catalogv1.Principal, req *catalogv1.CreateSourceRequest) (*catalogv1.Source, error) {
	if err := canWrite(p, "create sources"); err != nil {
		return nil, err
	}
	src, err := c.createSource(ctx, p.GetWorkspaceId(), p.GetUserId(), req, NewSecret(32))
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Source Created", KindSource, src.GetId(), src.GetName(), map[string]string{"type": src.GetType()})
	return src, nil
}

func validLabels(labels map[string]string, field string) error {
	for k := range labels {
		if strings.TrimSpace(k) == "" {
			return invalid(field, "LABEL_KEY_EMPTY", "label keys must not be empty")
		}
	}
	return nil
}

func (c *Catalog) createSource(ctx context.Context, ws, by string, req *catalogv1.CreateSourceRequest, writeKey string) (*catalogv1.Source, error) {
	name := strings.TrimSpace(req.GetName())
	if name == "" {
		return nil, invalid("name", "REQUIRED", "is required")
	}
	typ := req.GetType()
	if typ == "" {
		typ = "http-api"
	}
	m := findMeta(sourceCatalog, typ)
	if m == nil {
		return nil, unknownType("type", "source", typ, sourceCatalog)
	}
	slug := req.GetSlug()
	if slug == "" {
		slug = Slugify(name)
	}
	if slug == "" || slug != Slugify(slug) {
		return nil, invalid("slug", "SLUG_FORMAT", "must be lower-case letters, digits and underscores, not starting with a digit, at most 63 characters")
	}
	if id := c.sourceWithSlug(ws, slug); id != "" {
		return nil, invalid("slug", "SLUG_TAKEN", "slug %q is already used by source %s", slug, id)
	}
	if err := validLabels(req.GetLabels(), "labels"); err != nil {
		return nil, err
	}
	env := req.GetEnvironment()
	if env == catalogv1.Environment_ENVIRONMENT_UNSPECIFIED {
		env = catalogv1.Environment_ENVIRONMENT_PROD
	}
	now := timestamppb.New(c.now())
	src := &catalogv1.Source{
		Id:              NewID("src"),
		WorkspaceId:     ws,
		Name:            name,
		Slug:            slug,
		Type:            typ,
		Category:        m.Categories[0],
		Environment:     env,
		Labels:          req.GetLabels(),
		Enabled:         req.Enabled == nil || req.GetEnabled(),
		WriteKeys:       []string{writeKey},
		CreatedAt:       now,
		CreatedBy:       by,
		UpdatedAt:       now,
		LifecycleExempt: req.GetLifecycleExempt(),
		// A new source has no destination yet: the lifecycle clock starts now.
		InactiveSince: now,
	}
	rev, err := c.createRev(ctx, KindSource, src.Id, src)
	if err != nil {
		return nil, fmt.Errorf("store source: %w", err)
	}
	return c.sourceOut(nil, src, rev), nil
}

// UpdateSource applies a PATCH to a source: conditional when req.Revision
// is set, else merged into the latest revision.
func (c *Catalog) UpdateSource(ctx context.Context, p *catalogv1.Principal, req *catalogv1.UpdateSourceRequest) (*catalogv1.Source, error) {
	if err := canWrite(p, "change sources"); err != nil {
		return nil, err
	}
	if req.Name != nil && strings.TrimSpace(req.GetName()) == "" {
		return nil, invalid("name", "REQUIRED", "must not be empty")
	}
	if req.GetEnvironment() != catalogv1.Environment_ENVIRONMENT_UNSPECIFIED && envText(req.GetEnvironment()) == "" {
		return nil, invalid("environment", "ENVIRONMENT_INVALID", "must be ENVIRONMENT_DEV or ENVIRONMENT_PROD")
	}
	if err := validLabels(req.GetLabels(), "labels"); err != nil {
		return nil, err
	}
	changed := map[string]string{}
	var wasEnabled bool
	src, rev, err := mutate(ctx, c, KindSource, p.GetWorkspaceId(), req.GetSourceId(), req.GetRevision(), func(s *catalogv1.Source) error {
		wasEnabled = s.GetEnabled()
		clear(changed)
		if req.Name != nil {
			s.Name = strings.TrimSpace(req.GetName())
			changed["name"] = s.Name
		}
		if req.Enabled != nil {
			c.setEnabled(s, req.GetEnabled(), p.GetUserId())
			changed["enabled"] = fmt.Sprint(s.Enabled)
		}
		if req.GetEnvironment() != catalogv1.Environment_ENVIRONMENT_UNSPECIFIED {
			s.Environment = req.GetEnvironment()
			changed["environment"] = envText(s.Environment)
		}
		if req.GetClearLabels() {
			s.Labels = nil
			changed["labels"] = ""
		}
		if len(req.GetLabels()) > 0 {
			s.Labels = maps.Clone(req.GetLabels())
			changed["labels"] = labelString(s.Labels)
		}
		if req.LifecycleExempt != nil {
			s.LifecycleExempt = req.GetLifecycleExempt()
			changed["lifecycleExempt"] = fmt.Sprint(s.LifecycleExempt)
		}
		s.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	action := "Source Modified"
	switch {
	case req.Enabled != nil && !wasEnabled && src.GetEnabled():
		action = "Source Enabled"
	case req.Enabled != nil && wasEnabled && !src.GetEnabled():
		action = "Source Disabled"
	}
	c.record(ctx, p, action, KindSource, src.GetId(), src.GetName(), changed)
	return c.sourceOut(p, src, rev), nil
}

// setEnabled enables or disables s. Re-enabling restarts the lifecycle
// clock when the source still has no enabled destination, so a source the
// system disabled gets the full 14 days again.
func (c *Catalog) setEnabled(s *catalogv1.Source, enabled bool, by string) {
	if enabled == s.GetEnabled() {
		return
	}
	s.Enabled = enabled
	if enabled {
		s.DisabledBy = ""
		s.DisableWarningSentAt = nil
		if s.InactiveSince != nil {
			s.InactiveSince = timestamppb.New(c.now())
		}
		return
	}
	s.DisabledBy = by
}

func labelString(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + m[k]
	}
	return strings.Join(parts, ",")
}

// AddSourceLabels merges labels into a source (server-side merge: concurrent
// additions are all kept).
func (c *Catalog) AddSourceLabels(ctx context.Context, p *catalogv1.Principal, req *catalogv1.AddSourceLabelsRequest) (*catalogv1.Source, error) {
	if err := canWrite(p, "change sources"); err != nil {
		return nil, err
	}
	if len(req.GetLabels()) == 0 {
		return nil, invalid("labels", "REQUIRED", "is required")
	}
	if err := validLabels(req.GetLabels(), "labels"); err != nil {
		return nil, err
	}
	src, rev, err := mutate(ctx, c, KindSource, p.GetWorkspaceId(), req.GetSourceId(), 0, func(s *catalogv1.Source) error {
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		maps.Copy(s.Labels, req.GetLabels())
		s.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Source Labels Added", KindSource, src.GetId(), src.GetName(), map[string]string{"labels": labelString(req.GetLabels())})
	return c.sourceOut(p, src, rev), nil
}

// CreateWriteKey adds a write key to a source.
func (c *Catalog) CreateWriteKey(ctx context.Context, p *catalogv1.Principal, sourceID string) (string, *catalogv1.Source, error) {
	if err := canWrite(p, "manage write keys"); err != nil {
		return "", nil, err
	}
	key := NewSecret(32)
	src, rev, err := mutate(ctx, c, KindSource, p.GetWorkspaceId(), sourceID, 0, func(s *catalogv1.Source) error {
		s.WriteKeys = append(s.WriteKeys, key)
		s.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	c.record(ctx, p, "Write Key Created", KindSource, src.GetId(), src.GetName(), map[string]string{"writeKey": hint(key)})
	return key, c.sourceOut(p, src, rev), nil
}

// RevokeWriteKey removes a write key; Ingest refuses it after its next
// configuration snapshot (milliseconds).
func (c *Catalog) RevokeWriteKey(ctx context.Context, p *catalogv1.Principal, sourceID, key string) (*catalogv1.Source, error) {
	if err := canWrite(p, "manage write keys"); err != nil {
		return nil, err
	}
	if key == "" {
		return nil, invalid("writeKey", "REQUIRED", "is required")
	}
	src, rev, err := mutate(ctx, c, KindSource, p.GetWorkspaceId(), sourceID, 0, func(s *catalogv1.Source) error {
		i := slices.Index(s.WriteKeys, key)
		if i < 0 {
			return &NotFoundError{Kind: "write_keys", ID: hint(key)}
		}
		s.WriteKeys = slices.Delete(s.WriteKeys, i, i+1)
		s.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.record(ctx, p, "Write Key Revoked", KindSource, src.GetId(), src.GetName(), map[string]string{"writeKey": hint(key)})
	return c.sourceOut(p, src, rev), nil
}

// hint is the recognisable start of a secret.
func hint(secret string) string {
	if len(secret) <= 6 {
		return "…"
	}
	return secret[:6] + "…"
}

// DeleteSource removes a source and its destinations, and disconnects it
// from warehouses.
func (c *Catalog) DeleteSource(ctx context.Context, p *catalogv1.Principal, id string, expect uint64) error {
	if err := canWrite(p, "delete sources"); err != nil {
		return err
	}
	if id == "" {
		return invalid("sourceId", "REQUIRED", "is required")
	}
	v := c.view(p.GetWorkspaceId())
	e, ok := v.sources[id]
	if !ok {
		return &NotFoundError{Kind: KindSource, ID: id}
	}
	if expect != 0 && e.rev != expect {
		return &RevisionError{Kind: KindSource, ID: id, Want: expect, Current: e.rev}
	}
	src := e.msg.(*catalogv1.Source)
	for _, d := range v.destsBySource[id] {
		if err := c.deleteDestination(ctx, p, d.GetId()); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete destination %s of source %s: %w", d.GetId(), id, err)
		}
	}
	for _, w := range v.whsBySource[id] {
		if _, err := c.DisconnectWarehouseSource(ctx, p, w.GetId(), id); err != nil && !isNotFound(err) {
			return fmt.Errorf("disconnect warehouse %s: %w", w.GetId(), err)
		}
	}
	rev := expect
	if rev == 0 {
		// The cascade above may have touched the source (lifecycle fields).
		cur, ok := c.get(KindSource, id)
		if !ok {
			return &NotFoundError{Kind: KindSource, ID: id}
		}
		rev = cur.rev
	}
	if err := c.remove(ctx, KindSource, id, rev); err != nil {
		if expect == 0 {
			return err
		}
		return &RevisionError{Kind: KindSource, ID: id, Want: expect}
	}
	c.record(ctx, p, "Source Deleted", KindSource, id, src.GetName(), nil)
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// sourceWithSlug returns the id of the workspace's source with slug, or "".
func (c *Catalog) sourceWithSlug(ws, slug string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, e := range c.entries[KindSource] {
		if s := e.msg.(*catalogv1.Source); s.GetWorkspaceId() == ws && s.GetSlug() == slug {
			return id
		}
	}
	return ""
}
