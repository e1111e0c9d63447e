package expectations

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
		do   func(e *Expectations, clk *clocktesting.FakeClock)
		want bool
	}
	expectCreations := func(n int) func(*Expectations, *clocktesting.FakeClock) {
		return func(e *Expectations, _ *clocktesting.FakeClock) { e.Expect(rs, n, nil) }
	}
	created := func(e *Expectations, _ *clocktesting.FakeClock) { e.CreationObserved(rs) }
	expectDeletions := func(pods ...types.UID) func(*Expectations, *clocktesting.FakeClock) {
		return func(e *Expectations, _ *clocktesting.FakeClock) { e.Expect(rs, 0, pods) }
	}
	deleted := func(pod types.UID) func(*Expectations, *clocktesting.FakeClock) {
		return func(e *Expectations, _ *clocktesting.FakeClock) { e.DeletionObserved(rs, pod) }
	}
	wait := func(d time.Duration) func(*Expectations, *clocktesting.FakeClock) {
		return func(_ *Expectations, clk *clocktesting.FakeClock) { clk.Step(d) }
	}
	forget := func(e *Expectations, _ *clocktesting.FakeClock) { e.Forget(rs) }

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
			{expectCreations(2), false}, {wait(Timeout), false}, {wait(time.Second), true},
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
			e := New(clk)
			for i, s := range tc.steps {
				s.do(e, clk)
				if got := e.Satisfied(rs); got != s.want {
					t.Fatalf("after step %d: satisfied = %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestExpectationsAreKeptPerOwner(t *testing.T) {
	e := New(clocktesting.NewFakeClock(time.Now()))
	e.Expect("a", 1, nil)
	e.CreationObserved("b")
	if e.Satisfied("a") {
		t.Fatal("a pod of ReplicaSet b satisfied ReplicaSet a's expectations")
	}
	if !e.Satisfied("b") {
		t.Fatal("ReplicaSet b expects nothing but is not satisfied")
	}
}

func TestCreationsAndDeletionsTogether(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(t0)
	e := New(clk)
	owner := types.UID("ds")
	if !e.Satisfied(owner) {
		t.Fatal("nothing in flight yet is not satisfied")
	}
	e.Expect(owner, 2, []types.UID{"p1"})
	e.CreationObserved(owner)
	e.DeletionObserved(owner, "p1")
	e.DeletionObserved(owner, "p1") // seen twice (deletionTimestamp, then gone): counts once
	if e.Satisfied(owner) {
		t.Error("satisfied with one creation still in flight")
	}
	e.CreationObserved(owner)
	if !e.Satisfied(owner) {
		t.Error("not satisfied once everything was observed")
	}
	e.Expect(owner, 1, nil)
	clk.SetTime(t0.Add(Timeout + time.Second))
	if !e.Satisfied(owner) {
		t.Error("a lost event wedged the owner past the timeout")
	}
	e.Forget(owner)
	if len(e.byOwner) != 0 {
		t.Error("forget kept the record")
	}
}
