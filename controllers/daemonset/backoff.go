package daemonset

import (
	"fmt"
	"sync"
	"time"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// Upstream's back-off before a failed daemon pod is killed (and so
// replaced): a second after the first kill on a node, doubling with each
// further one, at most 15 minutes. A node whose daemon crashes at once
// would otherwise see its pod deleted and recreated in a hot loop.
const (
	failedPodBackoffBase = time.Second
	failedPodBackoffMax  = 15 * time.Minute
)

// backoffEntry is one node's back-off: the delay that must pass after the
// last kill before the next.
type backoffEntry struct {
	delay time.Duration
	last  time.Time
}

// expired reports whether the entry is so old that the node starts over,
// as upstream forgets an entry twice the maximum delay after its last use.
func (e backoffEntry) expired(now time.Time) bool {
	return now.Sub(e.last) > 2*failedPodBackoffMax
}

// nextKill decides whether a failed pod may be killed at now, given the
// node's back-off entry (found reports whether it has one). If it may,
// wait is 0 and next is the entry to keep, with the delay doubled; if not,
// wait is how long the node remains in back-off.
func nextKill(prev backoffEntry, found bool, now time.Time) (next backoffEntry, wait time.Duration) {
	if !found || prev.expired(now) {
		return backoffEntry{delay: failedPodBackoffBase, last: now}, 0
	}
	if elapsed := now.Sub(prev.last); elapsed < prev.delay {
		return prev, prev.delay - elapsed
	}
	return backoffEntry{delay: min(2*prev.delay, failedPodBackoffMax), last: now}, 0
}

// failedPodBackoff holds the back-off of every DaemonSet and node. It
// lives in memory, as upstream's: after a restart, failed pods are killed
// at once.
type failedPodBackoff struct {
	mu        sync.Mutex
	entries   map[string]backoffEntry
	lastSweep time.Time
}

func newFailedPodBackoff() *failedPodBackoff {
	return &failedPodBackoff{entries: map[string]backoffEntry{}}
}

// backoffKey names a node's back-off for one generation of a DaemonSet:
// a new template (a fix, often) starts without back-off, as upstream's key
// holds the generation too.
func backoffKey(ds *skiffappsv1.DaemonSet, node string) string {
	return fmt.Sprintf("%s/%d/%s", ds.UID, ds.Generation, node)
}

// tryKill reports how long the failed pod of key must still wait, or 0
// when it may be killed now (which counts as a kill).
func (b *failedPodBackoff) tryKill(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	prev, found := b.entries[key]
	next, wait := nextKill(prev, found, now)
	b.entries[key] = next
	return wait
}

// sweep forgets expired entries, at most once a minute, so that the
// entries of deleted DaemonSets and nodes do not pile up.
func (b *failedPodBackoff) sweep(now time.Time) {
	if now.Sub(b.lastSweep) < time.Minute {
		return
	}
	b.lastSweep = now
	for k, e := range b.entries {
		if e.expired(now) {
			delete(b.entries, k)
		}
	}
}
