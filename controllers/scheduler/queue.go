package scheduler

import (
	"container/heap"
	"maps"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Queue timings, upstream's defaults.
const (
	initialBackoff = 1 * time.Second
	maxBackoff     = 10 * time.Second
	// maxUnschedulableWait is how long a parked pod waits for an event
	// before it is retried anyway.
	maxUnschedulableWait = 5 * time.Minute
)

// where a queued pod is.
type queueState int

const (
	inActive queueState = iota
	inBackoff
	inUnschedulable
	inFlight
)

// QueuedPod is a pending pod and its scheduling history.
type QueuedPod struct {
	Info *PodInfo
	// Attempts counts failed scheduling or binding attempts, for backoff.
	Attempts int
	state    queueState
	index    int // in the active heap
	// parkedAt is when the pod was parked as unschedulable.
	parkedAt     time.Time
	backoffUntil time.Time
	// moveSeq is the queue's move counter when the pod was popped: a move
	// since then means the cluster changed while it was being scheduled.
	moveSeq int64
	deleted bool
}

// Queue holds the pods waiting for a node: an active heap ordered by
// priority then age, a backoff area for pods that just failed, and an
// unschedulable area for pods that fit nowhere and wait for the cluster
// to change.
type Queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	active  activeHeap
	pods    map[types.UID]*QueuedPod
	moveSeq int64
	closed  bool
	now     func() time.Time
}

// NewQueue returns an empty queue; now is the clock for backoffs.
func NewQueue(now func() time.Time) *Queue {
	q := &Queue{pods: map[types.UID]*QueuedPod{}, now: now}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// AddOrUpdate records a pending pod. A new pod becomes active (unless
// onlyRefresh, for a pod the scheduler has already assumed); a parked
// pod whose spec or labels changed is retried, since the change may let
// it fit; otherwise only the stored object is refreshed (a newer
// resourceVersion for the binding's precondition).
func (q *Queue) AddOrUpdate(pi *PodInfo, onlyRefresh bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[pi.Pod.UID]
	if !ok {
		if onlyRefresh {
			return
		}
		qp = &QueuedPod{Info: pi}
		q.pods[pi.Pod.UID] = qp
		q.pushActive(qp)
		return
	}
	old := qp.Info.Pod
	qp.Info = pi
	changed := old.Generation != pi.Pod.Generation || !maps.Equal(old.Labels, pi.Pod.Labels)
	switch qp.state {
	case inActive:
		heap.Fix(&q.active, qp.index)
	case inUnschedulable:
		if changed {
			q.requeue(qp)
		}
	}
}

// Delete forgets a pod that was deleted or bound.
func (q *Queue) Delete(uid types.UID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.pods[uid]
	if !ok {
		return
	}
	qp.deleted = true
	if qp.state == inActive {
		heap.Remove(&q.active, qp.index)
	}
	delete(q.pods, uid)
}

// Pop waits for an active pod and hands it to the scheduling cycle, with
// the pod as it is now (the entry's Info may be refreshed later, under the
// queue's lock only); it returns false once the queue is closed.
func (q *Queue) Pop() (*QueuedPod, *PodInfo, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.active) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, nil, false
	}
	qp := heap.Pop(&q.active).(*QueuedPod)
	qp.state = inFlight
	qp.moveSeq = q.moveSeq
	return qp, qp.Info, true
}

// Done forgets a pod whose binding succeeded.
func (q *Queue) Done(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	uid := qp.Info.Pod.UID
	if cur, ok := q.pods[uid]; ok && cur == qp {
		delete(q.pods, uid)
	}
}

// Unschedulable parks a pod that fit nowhere. If the cluster changed while
// it was being scheduled, it goes to backoff instead: the change it missed
// may let it fit.
func (q *Queue) Unschedulable(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp.deleted {
		return
	}
	qp.Attempts++
	qp.backoffUntil = q.now().Add(backoffFor(qp.Attempts))
	if q.moveSeq != qp.moveSeq {
		qp.state = inBackoff
		return
	}
	qp.state = inUnschedulable
	qp.parkedAt = q.now()
}

// Backoff retries a pod after a delay that doubles with each failure, for
// pods whose binding failed.
func (q *Queue) Backoff(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp.deleted {
		return
	}
	qp.Attempts++
	qp.backoffUntil = q.now().Add(backoffFor(qp.Attempts))
	qp.state = inBackoff
}

// MoveAllToActive retries every parked pod, after a change in the cluster
// (a node added or changed, a pod gone) that may let them fit.
func (q *Queue) MoveAllToActive() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveSeq++
	for _, qp := range q.pods {
		if qp.state == inUnschedulable {
			q.requeue(qp)
		}
	}
}

// Flush activates pods whose backoff is over and pods parked for longer
// than maxUnschedulableWait; the scheduler calls it every second.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, qp := range q.pods {
		switch {
		case qp.state == inBackoff && !now.Before(qp.backoffUntil):
			q.pushActive(qp)
		case qp.state == inUnschedulable && now.Sub(qp.parkedAt) >= maxUnschedulableWait:
			q.requeue(qp)
		}
	}
}

// Close wakes Pop for good.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// Len is the number of pending pods the queue holds.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pods)
}

// requeue moves a parked pod to active, or to backoff while its backoff
// lasts.
func (q *Queue) requeue(qp *QueuedPod) {
	if q.now().Before(qp.backoffUntil) {
		qp.state = inBackoff
		return
	}
	q.pushActive(qp)
}

func (q *Queue) pushActive(qp *QueuedPod) {
	qp.state = inActive
	heap.Push(&q.active, qp)
	q.cond.Signal()
}

// backoffFor is 1s doubled per further attempt, capped at 10s.
func backoffFor(attempts int) time.Duration {
	d := initialBackoff
	for i := 1; i < attempts && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// activeHeap orders pods by priority, highest first, then by creation
// time, oldest first.
type activeHeap []*QueuedPod

func (h activeHeap) Len() int { return len(h) }
func (h activeHeap) Less(i, j int) bool {
	a, b := h[i].Info, h[j].Info
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Pod.CreationTimestamp.Before(&b.Pod.CreationTimestamp)
}
func (h activeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *activeHeap) Push(x any) {
	qp := x.(*QueuedPod)
	qp.index = len(*h)
	*h = append(*h, qp)
}
func (h *activeHeap) Pop() any {
	old := *h
	qp := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	qp.index = -1
	return qp
}

// QueueCounts is how many pods wait in each part of the queue; pods being
// scheduled right now are in none.
type QueueCounts struct {
	Active, Backoff, Unschedulable int
}

// Counts counts the pods in each part of the queue, for the pending pods
// gauge.
func (q *Queue) Counts() QueueCounts {
	q.mu.Lock()
	defer q.mu.Unlock()
	var c QueueCounts
	for _, qp := range q.pods {
		switch qp.state {
		case inActive:
			c.Active++
		case inBackoff:
			c.Backoff++
		case inUnschedulable:
			c.Unschedulable++
		}
	}
	return c
}
