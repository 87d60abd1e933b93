package catalog

import (
	"context"
	"fmt"
	"sync/atomic"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SystemActor is the actor of changes the catalog makes by itself (the
// source lifecycle); Segment's audit trail says "Segment" there.
const SystemActor = "system"

// record appends an audit event for a change by p (nil: the system) in p's
// workspace. The change is already stored: a failed append is logged, not
// returned, so the caller never retries a change that happened.
func (c *Catalog) record(ctx context.Context, p *catalogv1.Principal, action string, kind Kind, id, name string, details map[string]string) {
	ws := p.GetWorkspaceId()
	ev := &catalogv1.AuditEvent{
		WorkspaceId:  ws,
		ActorType:    "user",
		ActorId:      p.GetUserId(),
		Action:       action,
		ResourceType: kind.singular(),
		ResourceId:   id,
		ResourceName: name,
		Details:      details,
	}
	if e, ok := c.get(KindUser, p.GetUserId()); ok {
		ev.ActorEmail = e.msg.(*catalogv1.User).GetEmail()
	}
	c.appendAudit(ctx, ev)
}

// recordSystem appends an audit event for a change the system made.
func (c *Catalog) recordSystem(ctx context.Context, ws, action string, kind Kind, id, name string, details map[string]string) {
	c.appendAudit(ctx, &catalogv1.AuditEvent{
		WorkspaceId: ws, ActorType: SystemActor, ActorId: SystemActor, ActorEmail: "Switchyard",
		Action: action, ResourceType: kind.singular(), ResourceId: id, ResourceName: name, Details: details,
	})
}

// auditSeq orders the events of one process that share a timestamp.
var auditSeq atomic.Uint64

func (c *Catalog) appendAudit(ctx context.Context, ev *catalogv1.AuditEvent) {
	now := c.now()
	ev.Time = timestamppb.New(now)
	// Ids sort by time: the zero-padded Unix nanoseconds, then randomness.
	ev.Id = fmt.Sprintf("aud_%020d_%010d_%s", now.UnixNano(), auditSeq.Add(1), randomString(6))
	if err := c.create(context.WithoutCancel(ctx), KindAudit, ev.Id, ev); err != nil {
		c.logger.Error("catalog: audit event not stored", "action", ev.Action, "resource", ev.ResourceId, "err", err)
	}
}

// auditItem adapts AuditEvent to the creation-ordered pager.
type auditItem struct{ *catalogv1.AuditEvent }

func (a auditItem) GetCreatedAt() *timestamppb.Timestamp { return a.GetTime() }

// ListAuditEvents returns the workspace's audit trail, newest first,
// optionally only one resource's or one action's events.
func (c *Catalog) ListAuditEvents(p *catalogv1.Principal, page Page, resourceID, action string) ([]*catalogv1.AuditEvent, PageInfo, error) {
	var items []auditItem
	c.mu.RLock()
	for _, e := range c.entries[KindAudit] {
		ev := e.msg.(*catalogv1.AuditEvent)
		if ev.GetWorkspaceId() != p.GetWorkspaceId() || (resourceID != "" && ev.GetResourceId() != resourceID) || (action != "" && ev.GetAction() != action) {
			continue
		}
		items = append(items, auditItem{ev})
	}
	c.mu.RUnlock()
	got, info, err := pageByCreation(items, page, true)
	if err != nil {
		return nil, PageInfo{}, err
	}
	out := make([]*catalogv1.AuditEvent, len(got))
	for i, a := range got {
		out[i] = cloneOf(a.AuditEvent)
	}
	return out, info, nil
}
