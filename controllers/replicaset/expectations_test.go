package replicaset

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestExpectations(t *testing.T) {
	const rs = types.UID("rs")
	// step is one thing that happens to the expectations of rs; after it,
	// satisfied(rs) must be want.
	type step struct {
		do   func(e *expectations, clk *clocktesting.FakeClock)
		want bool
	}
	expectCreations := func(n int) func(*expectations, *clocktesting.FakeClock) {
		return func(e *expectations, _ *clocktesting.FakeClock) { e.expectCreations(rs, n) }
	}
	created := func(e *expectations, _ *clocktesting.FakeClock) { e.creationObserved(rs) }
	expectDeletions := func(pods ...types.UID) func(*expectations, *clocktesting.FakeClock) {
		return func(e *expectations, _ *clocktesting.FakeClock) { e.expectDeletions(rs, pods) }
	}
	deleted := func(pod types.UID) func(*expectations, *clocktesting.FakeClock) {
		return func(e *expectations, _ *clocktesting.FakeClock) { e.deletionObserved(rs, pod) }
	}
	wait := func(d time.Duration) func(*expectations, *clocktesting.FakeClock) {
		return func(_ *expectations, clk *clocktesting.FakeClock) { clk.Step(d) }
	}
	forget := func(e *expectations, _ *clocktesting.FakeClock) { e.forget(rs) }

	cases := []struct {
		name  string
		steps []step
	}{
		{"nothing recorded is satisfied", []step{{wait(0), true}}},
		{"creations wait until every pod is seen", []step{
			{expectCreations(3), false}, {created, false}, {created, false}, {created, true},
		}},
		{"extra creation events do not go negative", []step{
			{expectCreations(1), false}, {created, true}, {created, true}, {expectCreations(1), false}, {created, true},
		}},
		{"creations of zero are satisfied at once", []step{{expectCreations(0), true}}},
		{"deletions wait for each named pod", []step{
			{expectDeletions("a", "b"), false}, {deleted("a"), false}, {deleted("b"), true},
		}},
		{"a deletion seen twice counts once", []step{
			{expectDeletions("a", "b"), false}, {deleted("a"), false}, {deleted("a"), false}, {deleted("b"), true},
		}},
		{"the deletion of a pod not awaited does not count", []step{
			{expectDeletions("a"), false}, {deleted("z"), false}, {deleted("a"), true},
		}},
		{"expectations expire after the timeout", []step{
			{expectCreations(2), false}, {wait(expectationsTimeout), false}, {wait(time.Second), true},
		}},
		{"forget drops what was in flight", []step{
			{expectCreations(5), false}, {forget, true},
		}},
		{"observations for an unknown owner are ignored", []step{
			{created, true}, {deleted("a"), true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			e := newExpectations(clk)
			for i, s := range tc.steps {
				s.do(e, clk)
				if got := e.satisfied(rs); got != s.want {
					t.Fatalf("after step %d: satisfied = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestExpectationsAreKeptPerOwner(t *testing.T) {
	e := newExpectations(clocktesting.NewFakeClock(time.Now()))
	e.expectCreations("a", 1)
	e.creationObserved("b")
	if e.satisfied("a") {
		t.Fatal("a pod of ReplicaSet b satisfied ReplicaSet a's expectations")
	}
	if !e.satisfied("b") {
		t.Fatal("ReplicaSet b expects nothing but is not satisfied")
	}
}
