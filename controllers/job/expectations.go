package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationsTimeout bounds the wait for a lost event, as upstream's.
const expectationsTimeout = 5 * time.Minute

// expectations remembers, per Job UID, what this controller asked for and
// its cache has not shown yet: pod creations (a sync before the cache
// shows them would create them again) and finalizer removals (a sync
// before the cache shows them would count the pod again, its UID having
// left uncountedTerminatedPods).
type expectations struct {
	clock clock.PassiveClock

	mu    sync.Mutex
	byJob map[types.UID]*expected
}

type expected struct {
	creations int
	since     time.Time
	// released are the pods whose finalizer removal is not yet observed.
	released map[types.UID]bool
}

func newExpectations(clk clock.PassiveClock) *expectations {
	return &expectations{clock: clk, byJob: map[types.UID]*expected{}}
}

func (e *expectations) get(job types.UID) *expected {
	x := e.byJob[job]
	if x == nil {
		x = &expected{released: map[types.UID]bool{}}
		e.byJob[job] = x
	}
	return x
}

func (e *expectations) expectCreations(job types.UID, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.get(job)
	x.creations, x.since = n, e.clock.Now()
}

func (e *expectations) creationObserved(job types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byJob[job]; x != nil && x.creations > 0 {
		x.creations--
	}
}

// mayCreate reports whether no creation is in flight (or the wait timed
// out).
func (e *expectations) mayCreate(job types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.byJob[job]
	return x == nil || x.creations <= 0 || e.clock.Since(x.since) > expectationsTimeout
}

func (e *expectations) expectRelease(job, pod types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.get(job).released[pod] = true
}

// releaseObserved is called when the cache shows the pod without the
// finalizer, or gone.
func (e *expectations) releaseObserved(job, pod types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byJob[job]; x != nil {
		delete(x.released, pod)
	}
}

// pendingReleases returns a copy of the pods whose release is in flight.
func (e *expectations) pendingReleases(job types.UID) map[types.UID]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[types.UID]bool{}
	if x := e.byJob[job]; x != nil {
		for uid := range x.released {
			out[uid] = true
		}
	}
	return out
}

func (e *expectations) forget(job types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byJob, job)
}
