package main

import (
	"testing"
	"time"
)

func TestWithTimelineBucketsByDueSecond(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	a := &worker{
		lat:  []time.Duration{1 * time.Millisecond, 2 * time.Millisecond, 30 * time.Millisecond},
		dues: []time.Time{t0, t0.Add(999 * time.Millisecond), t0.Add(2500 * time.Millisecond)},
	}
	b := &worker{
		lat:  []time.Duration{4 * time.Millisecond},
		dues: []time.Time{t0.Add(1 * time.Second)},
	}
	r := report{}.withTimeline([]*worker{a, b}, t0)
	want := [][]time.Duration{
		{1 * time.Millisecond, 2 * time.Millisecond},
		{4 * time.Millisecond},
		{30 * time.Millisecond},
	}
	if len(r.timeline) != len(want) {
		t.Fatalf("timeline has %d seconds, want %d: %v", len(r.timeline), len(want), r.timeline)
	}
	for s, w := range want {
		got := r.timeline[s].lat
		if len(got) != len(w) {
			t.Fatalf("second %d: latencies %v, want %v", s, got, w)
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("second %d: latencies %v, want %v", s, got, w)
			}
		}
	}
}

func TestMachineCPUCountsThisProcessesWork(t *testing.T) {
	t.Parallel()
	m0, c0 := machineCPU(), selfCPU()
	if m0.busy <= 0 {
		t.Fatalf("machineCPU busy = %v, want > 0 (reading /proc/stat)", m0.busy)
	}
	// Spin until this process used 200 ms of CPU: the machine's busy time
	// must have grown by at least that much (minus one tick per core of
	// rounding).
	x := 0
	for selfCPU()-c0 < 200*time.Millisecond {
		for i := 0; i < 1e6; i++ {
			x += i
		}
	}
	_ = x
	used := selfCPU() - c0
	if grew := machineCPU().busy - m0.busy; grew < used-50*time.Millisecond {
		t.Errorf("machine busy time grew by %v while this process used %v", grew, used)
	}
}
