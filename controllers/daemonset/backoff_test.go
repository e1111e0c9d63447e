package daemonset

import (
	"testing"
	"time"
)

func TestNextKill(t *testing.T) {
	at := func(s time.Duration) time.Time { return t0.Add(s) }
	tests := []struct {
		name      string
		prev      backoffEntry
		found     bool
		now       time.Time
		wantDelay time.Duration
		wantWait  time.Duration
	}{
		{name: "the first kill on a node is at once and starts a 1s back-off",
			now: at(0), wantDelay: time.Second},
		{name: "within the back-off: wait for the rest of it",
			prev: backoffEntry{delay: 4 * time.Second, last: at(0)}, found: true, now: at(time.Second),
			wantDelay: 4 * time.Second, wantWait: 3 * time.Second},
		{name: "once the back-off has passed: kill, and double it",
			prev: backoffEntry{delay: 4 * time.Second, last: at(0)}, found: true, now: at(4 * time.Second),
			wantDelay: 8 * time.Second},
		{name: "the delay stops doubling at 15 minutes",
			prev: backoffEntry{delay: 10 * time.Minute, last: at(0)}, found: true, now: at(10 * time.Minute),
			wantDelay: 15 * time.Minute},
		{name: "a node quiet for twice the maximum starts over",
			prev: backoffEntry{delay: 15 * time.Minute, last: at(0)}, found: true, now: at(31 * time.Minute),
			wantDelay: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, wait := nextKill(tt.prev, tt.found, tt.now)
			if wait != tt.wantWait || next.delay != tt.wantDelay {
				t.Errorf("nextKill = delay %v, wait %v; want delay %v, wait %v", next.delay, wait, tt.wantDelay, tt.wantWait)
			}
			if wait == 0 && !next.last.Equal(tt.now) {
				t.Errorf("a kill at %v was recorded at %v", tt.now, next.last)
			}
		})
	}
}

// TestFailedPodBackoff plays a node whose daemon fails at once, every
// second: kills are spaced 1s, 2s, 4s... apart, per node and generation.
func TestFailedPodBackoff(t *testing.T) {
	b := newFailedPodBackoff()
	var kills []time.Duration
	for s := range 16 {
		if b.tryKill("ds/1/a", t0.Add(time.Duration(s)*time.Second)) == 0 {
			kills = append(kills, time.Duration(s)*time.Second)
		}
	}
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second}
	if len(kills) != len(want) {
		t.Fatalf("kills at %v, want at %v", kills, want)
	}
	for i := range want {
		if kills[i] != want[i] {
			t.Fatalf("kills at %v, want at %v", kills, want)
		}
	}
	if b.tryKill("ds/1/b", t0.Add(15*time.Second)) != 0 {
		t.Error("another node waited for the first node's back-off")
	}
	if b.tryKill("ds/2/a", t0.Add(15*time.Second)) != 0 {
		t.Error("a new generation waited for the previous one's back-off")
	}
}
