package scheduler

import (
	"testing"
	"time"
)

// fakeClock is a settable clock for the queue and the cache.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestQueueOrdersByPriorityThenAge(t *testing.T) {
	q := NewQueue(time.Now)
	old, young := pod("old", "", "", withPriority(5)), pod("young", "", "", withPriority(5))
	high, low := pod("high", "", "", withPriority(10)), pod("low", "", "")
	for _, p := range []*PodInfo{info(low), info(young), info(high), info(old)} {
		q.AddOrUpdate(p, false)
	}
	for _, want := range []string{"high", "old", "young", "low"} {
		_, pi, ok := q.Pop()
		if !ok || pi.Pod.Name != want {
			t.Fatalf("popped %s, want %s", pi.Pod.Name, want)
		}
	}
}

// TestQueueParksAndRetries walks a pod through the queue's areas: parked
// when unschedulable, retried on a cluster change once its backoff is
// over, or after five minutes without one.
func TestQueueParksAndRetries(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	q := NewQueue(clock.now)
	p := info(pod("p", "", ""))
	q.AddOrUpdate(p, false)
	qp, _, _ := q.Pop()
	q.Unschedulable(qp)
	if qp.state != inUnschedulable {
		t.Fatalf("state %v, want parked", qp.state)
	}
	// A status-only update (our own PodScheduled write) does not retry it.
	q.AddOrUpdate(info(p.Pod.DeepCopy()), false)
	if qp.state != inUnschedulable {
		t.Fatal("a status update retried a parked pod")
	}
	// A change during backoff waits for the backoff.
	q.MoveAllToActive()
	if qp.state != inBackoff {
		t.Fatalf("state %v, want backoff", qp.state)
	}
	clock.t = clock.t.Add(initialBackoff)
	q.Flush()
	if qp.state != inActive {
		t.Fatalf("state %v, want active after the backoff", qp.state)
	}
	qp, _, _ = q.Pop()
	q.Unschedulable(qp)
	clock.t = clock.t.Add(maxUnschedulableWait)
	q.Flush()
	if qp.state != inActive {
		t.Fatalf("state %v, want active after the periodic flush", qp.state)
	}
	// A change while the pod was being scheduled sends it to backoff, not
	// to the parking lot where it would miss that change.
	qp, _, _ = q.Pop()
	q.MoveAllToActive()
	q.Unschedulable(qp)
	if qp.state != inBackoff {
		t.Fatalf("state %v, want backoff after a change in flight", qp.state)
	}
	// A spec change retries a parked pod whose backoff is over.
	q.Flush()
	clock.t = clock.t.Add(time.Hour)
	q.Flush()
	qp, _, _ = q.Pop()
	q.Unschedulable(qp)
	clock.t = clock.t.Add(maxBackoff)
	changed := p.Pod.DeepCopy()
	changed.Generation++
	q.AddOrUpdate(info(changed), false)
	if qp.state != inActive {
		t.Fatalf("state %v, want active after a spec change", qp.state)
	}
	q.Delete(p.Pod.UID)
	if q.Len() != 0 {
		t.Fatalf("%d pods left after the delete", q.Len())
	}
}

func TestBackoffDoubles(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := backoffFor(i + 1); got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
	}
}

func TestQueuePopWaitsAndCloses(t *testing.T) {
	q := NewQueue(time.Now)
	got := make(chan bool)
	go func() {
		_, _, ok := q.Pop()
		got <- ok
	}()
	q.AddOrUpdate(info(pod("p", "", "")), false)
	if !<-got {
		t.Fatal("Pop did not return the added pod")
	}
	go func() {
		_, _, ok := q.Pop()
		got <- ok
	}()
	q.Close()
	if <-got {
		t.Fatal("Pop returned a pod from a closed queue")
	}
}
