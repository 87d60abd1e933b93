package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	catalogv1 "github.com/switchyardhq/switchyard/gen/go/switchyard/catalog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Source lifecycle (Segment's auto-disable): a source whose destinations
// and warehouses are all disabled or absent for DisableAfter is disabled by
// the system; the workspace owners are emailed WarnBefore that. Sources with
// lifecycle_exempt (the exception list) are never disabled.

// Notice is the warning sent before the system disables a source.
type Notice struct {
	To            []string
	WorkspaceName string
	SourceID      string
	SourceName    string
	InactiveSince time.Time
	DisableAt     time.Time
}

// Notifier delivers lifecycle warnings (email over SMTP in production).
type Notifier interface {
	NotifySourceDisabling(ctx context.Context, n Notice) error
}

// LifecyclePolicy tunes the lifecycle.
type LifecyclePolicy struct {
	// DisableAfter is how long a source may go without an enabled
	// destination (14 days when zero).
	DisableAfter time.Duration
	// WarnBefore is how long before disabling the owners are warned (3 days
	// when zero).
	WarnBefore time.Duration
}

func (p LifecyclePolicy) withDefaults() LifecyclePolicy {
	if p.DisableAfter <= 0 {
		p.DisableAfter = 14 * 24 * time.Hour
	}
	if p.WarnBefore <= 0 {
		p.WarnBefore = 3 * 24 * time.Hour
	}
	return p
}

// refreshActivity keeps the lifecycle clock of sources exact: it starts
// when a source loses its last enabled destination or warehouse and stops
// (with any pending warning cleared) when it gains one. Errors are logged:
// the next Sweep repairs what a failed refresh left.
func (c *Catalog) refreshActivity(ctx context.Context, ws string, sourceIDs ...string) {
	if len(sourceIDs) == 0 {
		return
	}
	for _, id := range sourceIDs {
		v := c.viewOf(ws, id)
		if _, ok := v.sources[id]; !ok {
			continue
		}
		if err := c.setActivity(ctx, ws, id, v.active(id)); err != nil && !isNotFound(err) {
			c.logger.Error("catalog: lifecycle refresh", "source", id, "err", err)
		}
	}
}

// setActivity records whether a source has an enabled destination; it
// writes only when the stored state differs.
func (c *Catalog) setActivity(ctx context.Context, ws, id string, active bool) error {
	e, ok := c.get(KindSource, id)
	if !ok {
		return nil
	}
	s := e.msg.(*catalogv1.Source)
	if active == (s.GetInactiveSince() == nil) && (!active || s.GetDisableWarningSentAt() == nil) {
		return nil
	}
	_, _, err := mutate(ctx, c, KindSource, ws, id, 0, func(s *catalogv1.Source) error {
		switch {
		case active:
			s.InactiveSince, s.DisableWarningSentAt = nil, nil
		case s.InactiveSince == nil:
			s.InactiveSince = timestamppb.New(c.now())
		}
		return nil
	})
	return err
}

// SweepResult says what one Sweep did.
type SweepResult struct {
	Warned   []string
	Disabled []string
}

// Sweep applies the lifecycle policy to every source once: it repairs the
// activity clock, warns owners of sources that will be disabled within
// WarnBefore, and disables sources inactive for DisableAfter. A warning is
// marked sent only after the notifier accepted it, so a failed email is
// retried by the next sweep; a source is never disabled before its warning
// was sent.
func (c *Catalog) Sweep(ctx context.Context, policy LifecyclePolicy, n Notifier) (SweepResult, error) {
	policy = policy.withDefaults()
	var res SweepResult
	var errs []error
	for _, ws := range list(c, KindWorkspace, func(*catalogv1.Workspace) bool { return true }) {
		v := c.view(ws.GetId())
		for id, e := range v.sources {
			s := e.msg.(*catalogv1.Source)
			if !s.GetEnabled() {
				continue
			}
			active := v.active(id)
			if active || s.GetInactiveSince() == nil {
				if err := c.setActivity(ctx, ws.GetId(), id, active); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if s.GetLifecycleExempt() {
				continue
			}
			now := c.now()
			disableAt := s.GetInactiveSince().AsTime().Add(policy.DisableAfter)
			if s.GetDisableWarningSentAt() == nil && !now.Before(disableAt.Add(-policy.WarnBefore)) {
				if err := c.warn(ctx, ws, s, disableAt, n); err != nil {
					errs = append(errs, err)
					continue
				}
				res.Warned = append(res.Warned, id)
				// The owners get at least WarnBefore even when the sweep
				// ran late: never disable in the same sweep as the warning.
				continue
			}
			if s.GetDisableWarningSentAt() != nil && !now.Before(disableAt) && !now.Before(s.GetDisableWarningSentAt().AsTime().Add(policy.WarnBefore)) {
				if err := c.autoDisable(ctx, ws.GetId(), id); err != nil {
					errs = append(errs, err)
					continue
				}
				res.Disabled = append(res.Disabled, id)
			}
		}
	}
	return res, errors.Join(errs...)
}

func (c *Catalog) warn(ctx context.Context, ws *catalogv1.Workspace, s *catalogv1.Source, disableAt time.Time, n Notifier) error {
	var to []string
	for _, u := range c.owners(ws.GetId()) {
		to = append(to, u.GetEmail())
	}
	if n != nil && len(to) > 0 {
		err := n.NotifySourceDisabling(ctx, Notice{
			To: to, WorkspaceName: ws.GetName(), SourceID: s.GetId(), SourceName: s.GetName(),
			InactiveSince: s.GetInactiveSince().AsTime(), DisableAt: disableAt,
		})
		if err != nil {
			return fmt.Errorf("warn owners of source %s: %w", s.GetId(), err)
		}
	}
	_, _, err := mutate(ctx, c, KindSource, ws.GetId(), s.GetId(), 0, func(s *catalogv1.Source) error {
		s.DisableWarningSentAt = timestamppb.New(c.now())
		return nil
	})
	if err == nil {
		c.recordSystem(ctx, ws.GetId(), "Source Disable Warning Sent", KindSource, s.GetId(), s.GetName(), map[string]string{"disableAt": disableAt.UTC().Format(time.RFC3339)})
	}
	return err
}

// errStillActive stops an auto-disable that raced with a new destination.
var errStillActive = errors.New("source is active again")

func (c *Catalog) autoDisable(ctx context.Context, ws, id string) error {
	src, _, err := mutate(ctx, c, KindSource, ws, id, 0, func(s *catalogv1.Source) error {
		// Re-check on the latest revision: a destination, a re-enable or the
		// exception list may have arrived since the sweep's read.
		if !s.GetEnabled() || s.GetInactiveSince() == nil || s.GetLifecycleExempt() || s.GetDisableWarningSentAt() == nil {
			return errStillActive
		}
		s.Enabled = false
		s.DisabledBy = SystemActor
		s.UpdatedAt = timestamppb.New(c.now())
		return nil
	})
	if errors.Is(err, errStillActive) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disable source %s: %w", id, err)
	}
	c.recordSystem(ctx, ws, "Source Disabled", KindSource, id, src.GetName(), map[string]string{"reason": "no enabled destination for the lifecycle period"})
	return nil
}

// RunLifecycle sweeps every interval until ctx is done.
func (c *Catalog) RunLifecycle(ctx context.Context, interval time.Duration, policy LifecyclePolicy, n Notifier) error {
	if err := c.WaitReady(ctx); err != nil {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.Sweep(ctx, policy, n); err != nil && ctx.Err() == nil {
			c.logger.Warn("catalog: lifecycle sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
