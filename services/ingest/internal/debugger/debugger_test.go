package debugger

import (
	"strings"
	"testing"
)

func TestRingKeepsTheLatestInOrder(t *testing.T) {
	t.Parallel()
	var d Debugger
	for i := range Capacity + 5 {
		d.Record("src", Entry{MessageID: string(rune('a' + i%26)), Status: Accepted})
	}
	d.Record("other", Entry{MessageID: "x"})
	all := d.Since("src", 0, Capacity)
	if len(all) != Capacity {
		t.Fatalf("kept %d, want %d", len(all), Capacity)
	}
	if all[0].Seq != 6 || all[len(all)-1].Seq != Capacity+5 {
		t.Errorf("seq range %d..%d, want 6..%d (oldest dropped)", all[0].Seq, all[len(all)-1].Seq, Capacity+5)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("not in seq order at %d", i)
		}
	}
	if got := d.Since("src", Capacity+3, 10); len(got) != 2 || got[0].Seq != Capacity+4 {
		t.Errorf("after %d: %v, want the last two", Capacity+3, got)
	}
	if got := d.Since("src", 0, 3); len(got) != 3 || got[2].Seq != Capacity+5 {
		t.Errorf("latest 3: %v, want the newest three", got)
	}
	if got := d.Since("src", 10, 2); len(got) != 2 || got[0].Seq != 11 {
		t.Errorf("after 10 limit 2: %v, want seq 11 and 12", got)
	}
	if got := d.Since("missing", 0, 10); got != nil {
		t.Errorf("unknown source: %v", got)
	}
}

func TestPayloadIsCut(t *testing.T) {
	t.Parallel()
	var d Debugger
	d.Record("s", Entry{Payload: strings.Repeat("x", MaxPayload+100)})
	if got := d.Since("s", 0, 1)[0].Payload; len(got) != MaxPayload {
		t.Errorf("payload length %d, want %d", len(got), MaxPayload)
	}
}
