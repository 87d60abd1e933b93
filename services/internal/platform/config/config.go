// Package config holds the small helpers every Switchyard service uses to
// read its configuration from flags and environment variables and to
// validate it, reporting every problem at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env returns the value of the environment variable key, or def when the
// variable is unset or empty.
func Env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// EnvDuration returns the environment variable key parsed with
// time.ParseDuration, or def when it is unset or empty. A value that does
// not parse is an error naming the variable.
func EnvDuration(key string, def time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("%s: invalid duration %q (examples: 500ms, 30s, 5m)", key, v)
	}
	return d, nil
}

// EnvInt returns the environment variable key parsed as a base-10 integer,
// or def when it is unset or empty. A value that does not parse is an error
// naming the variable.
func EnvInt(key string, def int) (int, error) {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return def, fmt.Errorf("%s: invalid integer %q", key, v)
	}
	return n, nil
}

// EnvBool returns the environment variable key parsed with
// strconv.ParseBool, or def when it is unset or empty.
func EnvBool(key string, def bool) (bool, error) {
	v, ok := os.LookupEnv(key)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return def, fmt.Errorf("%s: invalid boolean %q (use true or false)", key, v)
	}
	return b, nil
}

// Problems collects configuration problems so that validation reports all
// of them in one error instead of failing on the first.
//
//	var p config.Problems
//	if cfg.GRPCAddr == "" {
//		p.Addf("--grpc-addr is required")
//	}
//	return p.Err()
type Problems []string

// Addf records one problem, formatted with fmt.Sprintf.
func (p *Problems) Addf(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// Err returns nil when no problem was recorded, otherwise one error whose
// message lists every problem in the order they were added.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return errors.New("invalid configuration: " + p[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(p))
	for _, s := range p {
		b.WriteString("\n  - ")
		b.WriteString(s)
	}
	return errors.New(b.String())
}
