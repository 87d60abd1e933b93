package testenv

import (
	"strings"
	"testing"
)

func TestLocalServers(t *testing.T) {
	t.Parallel()
	if addr := Redis(t); !reachable(addr) {
		t.Errorf("Redis(t) = %s, not reachable", addr)
	}
	url := RabbitMQ(t)
	if !strings.HasPrefix(url, "amqp://guest:guest@127.0.0.1:5672") || !reachable("127.0.0.1:5672") {
		t.Errorf("RabbitMQ(t) = %s, not reachable", url)
	}
}
