package e2e

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSecondInstanceOnSameDataDirRefuses checks that a second `switchyard
// dev` on a data dir in use exits with an error instead of starting a
// second embedded NATS server on the same store (which would lose
// acknowledged events), and that the first instance keeps working.
func TestSecondInstanceOnSameDataDirRefuses(t *testing.T) {
	t.Parallel()
	sy := startSwitchyard(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binPath, "dev",
		"--data-dir", sy.dataDir, "--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t)).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second instance: err = %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "data dir is in use by another switchyard process") {
		t.Errorf("second instance output does not name the cause:\n%s", out)
	}
	res := sy.request(t, http.MethodPost, "/v1/track", `{"userId":"u","event":"Still Fine"}`, basicWriteKey(sy.Boot.WriteKey))
	if res.Status != http.StatusOK {
		t.Errorf("first instance after the refused start: track status %d: %s", res.Status, res.Body)
	}
}
