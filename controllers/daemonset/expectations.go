package daemonset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationsTimeout is how long a DaemonSet waits for the pod events it
// expects before it syncs anyway: a lost event must not wedge it for ever.
const expectationsTimeout = 5 * time.Minute

// expectations remembers, per DaemonSet UID, the pod creations and
// deletions asked for and not yet seen in the cache, so that a sync never
// counts from a cache that lags behind its own writes (and creates a second
// pod on a node, or deletes one twice). It is the ReplicaSet controller's
// pattern, kept private to each controller.
type expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	byOwner map[types.UID]*expected
}

type expected struct {
	creations int
	deletions map[types.UID]bool
	since     time.Time
}

func newExpectations(clk clock.PassiveClock) *expectations {
	return &expectations{clock: clk, byOwner: map[types.UID]*expected{}}
}

// expect records the creations and deletions one sync is about to make,
// replacing what was recorded (it is only called once satisfied).
func (e *expectations) expect(owner types.UID, creations int, deletions []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := make(map[types.UID]bool, len(deletions))
	for _, uid := range deletions {
		dels[uid] = true
	}
	e.byOwner[owner] = &expected{creations: creations, deletions: dels, since: e.clock.Now()}
}

// creationObserved lowers owner's expected creations by one: a pod it
// controls appeared, or a creation failed and never will.
func (e *expectations) creationObserved(owner types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byOwner[owner]; x != nil && x.creations > 0 {
		x.creations--
	}
}

// deletionObserved marks pod's deletion as seen, once.
func (e *expectations) deletionObserved(owner, pod types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byOwner[owner]; x != nil {
		delete(x.deletions, pod)
	}
}

// satisfied reports whether owner may create or delete pods.
func (e *expectations) satisfied(owner types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.byOwner[owner]
	if x == nil || (x.creations <= 0 && len(x.deletions) == 0) {
		return true
	}
	return e.clock.Since(x.since) > expectationsTimeout
}

// forget drops owner's record once the DaemonSet is gone.
func (e *expectations) forget(owner types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byOwner, owner)
}
