package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/switchyardhq/switchyard/services/catalog/app"
	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
	"github.com/switchyardhq/switchyard/services/catalog/internal/mail"
)

// mailbox is an in-process SMTP server (emersion/go-smtp) that keeps every
// message it receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []email
	addr string
}

type email struct {
	from string
	to   []string
	data string
}

func newMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(mb)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = lis.Addr().String()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

// NewSession implements smtp.Backend.
func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: m}, nil }

type session struct {
	box *mailbox
	cur email
}

func (s *session) Reset()        { s.cur = email{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.cur)
	s.box.mu.Unlock()
	return nil
}

func (m *mailbox) received() []email {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

const day = 24 * time.Hour

// TestSourceLifecycle covers the 14 days with the injectable clock: the
// warning email three days before (received by a real SMTP server), the
// automatic disabling with the system as audit actor, the exception list,
// a destination arriving in time, and re-enabling.
func TestSourceLifecycle(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	e := newEnv(t)
	cat := e.svc.Catalog()
	notifier := mail.New(mail.Config{Addr: mb.addr, From: "switchyard@acme.test"}, nil)
	policy := catalog.LifecyclePolicy{}
	ctx := context.Background()
	sweep := func(t *testing.T) catalog.SweepResult {
		t.Helper()
		res, err := cat.Sweep(ctx, policy, notifier)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		return res
	}
	get := func(t *testing.T, id string) source {
		t.Helper()
		var out struct{ Source source }
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources/"+id, nil), &out)
		return out.Source
	}

	idle := e.createSource(t, e.owner, map[string]any{"name": "Idle"})
	exempt := e.createSource(t, e.owner, map[string]any{"name": "Exempt", "lifecycleExempt": true})
	served := e.createSource(t, e.owner, map[string]any{"name": "Served"})
	e.createWebhook(t, e.owner, "live hook", served.ID, true)
	paused := e.createSource(t, e.owner, map[string]any{"name": "Paused"})
	e.createWebhook(t, e.owner, "paused hook", paused.ID, false)
	rescued := e.createSource(t, e.owner, map[string]any{"name": "Rescued"})
	bootstrapSrc := e.boot.GetSource().GetId() // has the enabled warehouse

	t.Run("day 10: nothing happens", func(t *testing.T) {
		e.clock.Advance(10 * day)
		if res := sweep(t); len(res.Warned)+len(res.Disabled) != 0 || len(mb.received()) != 0 {
			t.Fatalf("sweep = %+v, mails %d", res, len(mb.received()))
		}
	})
	t.Run("day 11: the owner is emailed about the idle sources", func(t *testing.T) {
		e.clock.Advance(day)
		res := sweep(t)
		slices.Sort(res.Warned)
		want := []string{idle.ID, paused.ID, rescued.ID}
		slices.Sort(want)
		if !slices.Equal(res.Warned, want) || len(res.Disabled) != 0 {
			t.Fatalf("sweep = %+v, want warned %v", res, want)
		}
		msgs := mb.received()
		if len(msgs) != 3 {
			t.Fatalf("received %d emails, want 3", len(msgs))
		}
		var idleMail email
		for _, m := range msgs {
			if strings.Contains(m.data, idle.ID) {
				idleMail = m
			}
		}
		for _, want := range []string{"Subject: Source \"Idle\" will be disabled on 2026-03-15", "To: owner@acme.test", "no enabled destination since 2026-03-01T09:00:00Z", "disable it on 2026-03-15T09:00:00Z"} {
			if !strings.Contains(idleMail.data, want) {
				t.Fatalf("email lacks %q:\n%s", want, idleMail.data)
			}
		}
		if idleMail.from != "switchyard@acme.test" || fmt.Sprint(idleMail.to) != "[owner@acme.test]" {
			t.Fatalf("envelope from %q to %v", idleMail.from, idleMail.to)
		}
	})
	t.Run("day 13: no second email; a destination rescues one source", func(t *testing.T) {
		e.clock.Advance(2 * day)
		e.createWebhook(t, e.owner, "rescue hook", rescued.ID, true)
		if res := sweep(t); len(res.Warned)+len(res.Disabled) != 0 || len(mb.received()) != 3 {
			t.Fatalf("sweep = %+v, mails %d", res, len(mb.received()))
		}
	})
	t.Run("day 14: idle sources are disabled by the system", func(t *testing.T) {
		e.clock.Advance(day)
		res := sweep(t)
		slices.Sort(res.Disabled)
		want := []string{idle.ID, paused.ID}
		slices.Sort(want)
		if !slices.Equal(res.Disabled, want) {
			t.Fatalf("disabled %v, want %v", res.Disabled, want)
		}
		for id, enabled := range map[string]bool{idle.ID: false, paused.ID: false, exempt.ID: true, served.ID: true, rescued.ID: true, bootstrapSrc: true} {
			if s := get(t, id); s.Enabled != enabled || (!enabled && s.DisabledBy != "system") {
				t.Fatalf("source %s (%s): enabled %v disabledBy %q, want enabled %v", s.Name, id, s.Enabled, s.DisabledBy, enabled)
			}
		}
		// The data plane's configuration says disabled: Ingest refuses the write key.
		for _, snap := range cat.Snapshots() {
			for _, s := range snap.GetSources() {
				if s.GetId() == idle.ID && s.GetEnabled() {
					t.Fatalf("the config snapshot still has the idle source enabled")
				}
			}
		}
		var audit struct {
			AuditEvents []struct{ ActorType, ActorEmail, ResourceId, Time string } `json:"auditEvents"`
		}
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/audit-events?action=Source+Disabled", nil), &audit)
		if len(audit.AuditEvents) != 2 || audit.AuditEvents[0].ActorType != "system" || audit.AuditEvents[0].ActorEmail != "Switchyard" || audit.AuditEvents[0].Time != "2026-03-15T09:00:00Z" {
			t.Fatalf("audit = %+v", audit)
		}
	})
	t.Run("re-enabled, a source gets the full period again", func(t *testing.T) {
		mustOK(t, e.do(t, e.owner, http.MethodPatch, "/api/v1/sources/"+idle.ID, map[string]any{"enabled": true}), nil)
		if s := get(t, idle.ID); !s.Enabled || s.DisabledBy != "" {
			t.Fatalf("after re-enable: %+v", s)
		}
		e.clock.Advance(10 * day)
		if res := sweep(t); slices.Contains(res.Disabled, idle.ID) || slices.Contains(res.Warned, idle.ID) {
			t.Fatalf("re-enabled source touched 10 days later: %+v", res)
		}
		e.clock.Advance(day)
		if res := sweep(t); !slices.Contains(res.Warned, idle.ID) {
			t.Fatalf("no warning 11 days after re-enabling: %+v", res)
		}
	})
	t.Run("the exception list is a filter of the Sources page", func(t *testing.T) {
		var out struct{ Sources []source }
		mustOK(t, e.do(t, e.owner, http.MethodGet, "/api/v1/sources?filter=lifecycleExempt:eq:true", nil), &out)
		if len(out.Sources) != 1 || out.Sources[0].ID != exempt.ID {
			t.Fatalf("exempt = %+v", out.Sources)
		}
	})
}

// TestLifecycleLoop checks the wiring: the service's own sweep loop, with
// the SMTP settings of app.Params, emails the owner.
func TestLifecycleLoop(t *testing.T) {
	t.Parallel()
	mb := newMailbox(t)
	e := newEnv(t, envOptions{smtp: app.SMTP{Addr: mb.addr, From: "loop@acme.test"}, lifecycle: app.Lifecycle{Interval: 10 * time.Millisecond}})
	src := e.createSource(t, e.owner, map[string]any{"name": "Lonely"})
	e.clock.Advance(11*day + time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for len(mb.received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no email within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := mb.received()[0]; m.from != "loop@acme.test" || !strings.Contains(m.data, src.ID) {
		t.Fatalf("email = %+v", m)
	}
}
