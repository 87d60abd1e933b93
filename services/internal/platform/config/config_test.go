package config

import (
	"strings"
	"testing"
	"time"
)

// Tests in this file use t.Setenv and therefore cannot run in parallel.

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		set   bool
		value string
		want  string
	}{
		{name: "unset gives default", want: "def"},
		{name: "empty gives default", set: true, value: "", want: "def"},
		{name: "set value wins", set: true, value: "x", want: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "SWITCHYARD_TEST_ENV"
			if tt.set {
				t.Setenv(key, tt.value)
			}
			if got := Env(key, "def"); got != tt.want {
				t.Fatalf("Env = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvDuration(t *testing.T) {
	tests := []struct {
		name    string
		set     bool
		value   string
		want    time.Duration
		wantErr bool
	}{
		{name: "unset gives default", want: time.Second},
		{name: "valid value parses", set: true, value: "250ms", want: 250 * time.Millisecond},
		{name: "invalid value is an error", set: true, value: "ten", want: time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "SWITCHYARD_TEST_DURATION"
			if tt.set {
				t.Setenv(key, tt.value)
			}
			got, err := EnvDuration(key, time.Second)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), key) {
				t.Fatalf("error %q does not name the variable", err)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvInt(t *testing.T) {
	tests := []struct {
		name    string
		set     bool
		value   string
		want    int
		wantErr bool
	}{
		{name: "unset gives default", want: 7},
		{name: "valid value parses", set: true, value: "42", want: 42},
		{name: "invalid value is an error", set: true, value: "4x", want: 7, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "SWITCHYARD_TEST_INT"
			if tt.set {
				t.Setenv(key, tt.value)
			}
			got, err := EnvInt(key, 7)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvBool(t *testing.T) {
	tests := []struct {
		name    string
		set     bool
		value   string
		want    bool
		wantErr bool
	}{
		{name: "unset gives default", want: true},
		{name: "false parses", set: true, value: "false", want: false},
		{name: "invalid value is an error", set: true, value: "maybe", want: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const key = "SWITCHYARD_TEST_BOOL"
			if tt.set {
				t.Setenv(key, tt.value)
			}
			got, err := EnvBool(key, true)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		add      []string
		wantNil  bool
		contains []string
	}{
		{name: "no problems is nil", wantNil: true},
		{name: "one problem is named", add: []string{"--grpc-addr is required"}, contains: []string{"--grpc-addr is required"}},
		{
			name:     "every problem is listed",
			add:      []string{"--grpc-addr is required", "--nats-url is invalid"},
			contains: []string{"2 problems", "--grpc-addr is required", "--nats-url is invalid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p Problems
			for _, a := range tt.add {
				p.Addf("%s", a)
			}
			err := p.Err()
			if tt.wantNil {
				if err != nil {
					t.Fatalf("Err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Err = nil, want an error")
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
		})
	}
}
