package dev

import (
	"errors"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if _, err := lockDataDir(dir); !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second lock while held: err = %v, want ErrDataDirLocked", err)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
