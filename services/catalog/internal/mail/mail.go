// Package mail sends the catalog's lifecycle emails over SMTP.
package mail

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/switchyardhq/switchyard/services/catalog/internal/catalog"
)

// Config is the SMTP server lifecycle emails go through.
type Config struct {
	// Addr is the server's host:port; empty disables email (warnings are
	// then only logged and recorded in the audit trail).
	Addr string
	// From is the sender address.
	From string
	// Username and Password authenticate with PLAIN auth when set (the
	// standard library sends them only over TLS or to localhost).
	Username, Password string
}

// Notifier sends catalog.Notice emails; it implements catalog.Notifier.
type Notifier struct {
	cfg    Config
	logger *slog.Logger
}

// New returns a notifier for cfg.
func New(cfg Config, logger *slog.Logger) *Notifier {
	if cfg.From == "" {
		cfg.From = "switchyard@localhost"
	}
	return &Notifier{cfg: cfg, logger: logger}
}

// NotifySourceDisabling emails the notice's recipients.
func (n *Notifier) NotifySourceDisabling(ctx context.Context, notice catalog.Notice) error {
	if n.cfg.Addr == "" {
		n.logger.Warn("catalog: source will be disabled (no SMTP server configured, email not sent)",
			"source", notice.SourceID, "to", strings.Join(notice.To, ","), "disableAt", notice.DisableAt)
		return nil
	}
	msg := Compose(n.cfg.From, notice)
	var auth smtp.Auth
	if n.cfg.Username != "" {
		host, _, _ := net.SplitHostPort(n.cfg.Addr)
		auth = smtp.PlainAuth("", n.cfg.Username, n.cfg.Password, host)
	}
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(n.cfg.Addr, auth, n.cfg.From, notice.To, msg) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("send email via %s: %w", n.cfg.Addr, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Compose builds the RFC 5322 message of a notice.
func Compose(from string, n catalog.Notice) []byte {
	var b bytes.Buffer
	subject := fmt.Sprintf("Source %q will be disabled on %s", n.SourceName, n.DisableAt.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(n.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&b, "X-Switchyard-Source: %s\r\n\r\n", n.SourceID)
	fmt.Fprintf(&b, "The source %q (%s) in workspace %q has had no enabled destination since %s.\r\n",
		n.SourceName, n.SourceID, n.WorkspaceName, n.InactiveSince.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Switchyard will disable it on %s; it will then refuse events until it is re-enabled.\r\n\r\n",
		n.DisableAt.UTC().Format(time.RFC3339))
	b.WriteString("To keep it enabled, connect an enabled destination or warehouse, or add it to the\r\n")
	b.WriteString("lifecycle exception list (PATCH /api/v1/sources/{id} with {\"lifecycleExempt\": true}).\r\n")
	return b.Bytes()
}
