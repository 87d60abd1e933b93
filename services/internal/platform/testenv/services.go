package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// A local server a test needs: where it listens and how this machine kind
// starts it when it is installed but not running.
type localServer struct {
	name  string
	addr  string
	start []string
	wait  time.Duration

	once sync.Once
	err  error
}

var (
	redisServer = &localServer{
		name: "Redis", addr: "127.0.0.1:6379", wait: 20 * time.Second,
		start: []string{"redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
			"--save", "", "--appendonly", "no"},
	}
	rabbitServer = &localServer{
		name: "RabbitMQ", addr: "127.0.0.1:5672", wait: 90 * time.Second,
		start: []string{"rabbitmq-server", "-detached"},
	}
)

// Redis returns the address of the machine's Redis server, starting it
// once per test binary when it is installed but not running. It fails the
// test with a clear message when Redis cannot be had; it never skips.
func Redis(t testing.TB) string {
	t.Helper()
	redisServer.ensure(t)
	return redisServer.addr
}

// RabbitMQ returns the AMQP URL of the machine's RabbitMQ server (guest
// account), starting it like Redis.
func RabbitMQ(t testing.TB) string {
	t.Helper()
	rabbitServer.ensure(t)
	return "amqp://guest:guest@" + rabbitServer.addr + "/"
}

func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func (s *localServer) ensure(t testing.TB) {
	t.Helper()
	s.once.Do(func() {
		if reachable(s.addr) {
			return
		}
		out, err := exec.Command(s.start[0], s.start[1:]...).CombinedOutput()
		if err != nil {
			s.err = fmt.Errorf("start it with %q: %w: %s", strings.Join(s.start, " "), err, strings.TrimSpace(string(out)))
			return
		}
		deadline := time.Now().Add(s.wait)
		for !reachable(s.addr) {
			if time.Now().After(deadline) {
				s.err = fmt.Errorf("started with %q but %s did not answer within %s", strings.Join(s.start, " "), s.addr, s.wait)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	if s.err != nil {
		t.Fatalf("%s is required at %s and could not be had: %v", s.name, s.addr, s.err)
	}
}
