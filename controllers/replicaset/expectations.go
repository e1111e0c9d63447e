package replicaset

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// expectationsTimeout is how long a ReplicaSet waits for the pod events it
// expects before it syncs anyway, as upstream's ExpectationsTimeout: a lost
// event must not wedge a ReplicaSet for ever.
const expectationsTimeout = 5 * time.Minute

// expectations remembers, per ReplicaSet UID, the pod creations and
// deletions this controller has asked for and not yet seen in its cache.
// The cache lags behind the API: a sync that ran before the cache saw the
// last sync's pods would count too few (or too many) and create (or
// delete) them a second time. A ReplicaSet is synced only once its
// expectations are satisfied.
//
// It lives in memory only: after a restart, the new cache is complete when
// the first sync runs, so there is nothing in flight to remember.
type expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	byOwner map[types.UID]*expected
}

// expected is one ReplicaSet's work in flight.
type expected struct {
	// creations not yet observed. Pods are created with generateName, so
	// they are counted rather than named.
	creations int
	// deletions not yet observed, by pod UID: a pod's deletion is seen
	// twice (its deletionTimestamp, then its removal) and must count once.
	deletions map[types.UID]bool
	// since is when the expectations were set, for the timeout.
	since time.Time
}

func newExpectations(clk clock.PassiveClock) *expectations {
	return &expectations{clock: clk, byOwner: map[types.UID]*expected{}}
}

// expectCreations records that n pods are about to be created for owner,
// replacing whatever was recorded (it is only called once satisfied).
func (e *expectations) expectCreations(owner types.UID, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byOwner[owner] = &expected{creations: n, since: e.clock.Now()}
}

// expectDeletions records that these pods are about to be deleted.
func (e *expectations) expectDeletions(owner types.UID, pods []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := make(map[types.UID]bool, len(pods))
	for _, uid := range pods {
		dels[uid] = true
	}
	e.byOwner[owner] = &expected{deletions: dels, since: e.clock.Now()}
}

// creationObserved lowers owner's expected creations by one: a pod it
// controls appeared in the cache, or a creation failed and never will.
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

// satisfied reports whether owner may sync: nothing is in flight, or what
// is in flight has been waited for longer than expectationsTimeout.
func (e *expectations) satisfied(owner types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.byOwner[owner]
	if x == nil {
		return true
	}
	if x.creations <= 0 && len(x.deletions) == 0 {
		return true
	}
	return e.clock.Since(x.since) > expectationsTimeout
}

// forget drops owner's record, once the ReplicaSet is gone.
func (e *expectations) forget(owner types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byOwner, owner)
}
