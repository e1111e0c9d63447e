// Package expectations remembers, per owner, the child creations and
// deletions a controller has asked for and its cache has not shown yet, as
// upstream's ControllerExpectations. The cache lags behind the API: a sync
// that ran before the cache saw the last sync's children would count too few
// (or too many) and create (or delete) them a second time. An owner is
// synced only once its expectations are satisfied.
//
// They live in memory only: after a restart, the new cache is complete when
// the first sync runs, so there is nothing in flight to remember.
package expectations

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Timeout is how long an owner waits for the events it expects before it
// syncs anyway, as upstream's ExpectationsTimeout: a lost event must not
// wedge a controller for ever.
const Timeout = 5 * time.Minute

// Expectations are one controller's, keyed by owner UID.
type Expectations struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	byOwner map[types.UID]*expected
}

// expected is one owner's work in flight.
type expected struct {
	// creations not yet observed. Children may be created with
	// generateName, so they are counted rather than named.
	creations int
	// deletions not yet observed, by child UID: a deletion is seen twice
	// (the deletionTimestamp, then the removal) and must count once.
	deletions map[types.UID]bool
	// since is when the expectations were set, for the timeout.
	since time.Time
}

// New returns empty expectations on clk.
func New(clk clock.PassiveClock) *Expectations {
	return &Expectations{clock: clk, byOwner: map[types.UID]*expected{}}
}

// Expect records the creations and deletions a sync of owner is about to
// make, replacing whatever was recorded (it is only called once satisfied).
func (e *Expectations) Expect(owner types.UID, creations int, deletions []types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dels := make(map[types.UID]bool, len(deletions))
	for _, uid := range deletions {
		dels[uid] = true
	}
	e.byOwner[owner] = &expected{creations: creations, deletions: dels, since: e.clock.Now()}
}

// CreationObserved lowers owner's expected creations by one: a child it
// controls appeared in the cache, or a creation failed and never will.
func (e *Expectations) CreationObserved(owner types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byOwner[owner]; x != nil && x.creations > 0 {
		x.creations--
	}
}

// DeletionObserved marks child's deletion as seen, once.
func (e *Expectations) DeletionObserved(owner, child types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x := e.byOwner[owner]; x != nil {
		delete(x.deletions, child)
	}
}

// Satisfied reports whether owner may sync: nothing is in flight, or what
// is in flight has been waited for longer than Timeout.
func (e *Expectations) Satisfied(owner types.UID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.byOwner[owner]
	if x == nil {
		return true
	}
	if x.creations <= 0 && len(x.deletions) == 0 {
		return true
	}
	return e.clock.Since(x.since) > Timeout
}

// Forget drops owner's record, once the owner is gone.
func (e *Expectations) Forget(owner types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.byOwner, owner)
}
