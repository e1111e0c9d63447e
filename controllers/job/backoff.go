package job

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Upstream's pod re-creation back-off: 10s after the first failure,
// doubling with each further failure, at most 6 minutes.
const (
	defaultBackoffBase = 10 * time.Second
	defaultBackoffMax  = 6 * time.Minute
)

// backoffDelay is how long to wait after the last failure before creating
// a replacement, after failures failed pods.
func backoffDelay(failures int, base, maxDelay time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for range failures - 1 {
		d *= 2
		if d >= maxDelay {
			return maxDelay
		}
	}
	return min(d, maxDelay)
}

// backoffs remembers, per Job UID, the failed pods counted in a row and
// when the last one was counted. It lives in memory: after a restart a
// Job's replacement pods are created at once, as after upstream's.
type backoffs struct {
	mu     sync.Mutex
	byJob  map[types.UID]backoffRecord
	base   time.Duration
	maxDel time.Duration
}

type backoffRecord struct {
	failures int
	last     time.Time
}

func newBackoffs(base, maxDelay time.Duration) *backoffs {
	return &backoffs{byJob: map[types.UID]backoffRecord{}, base: base, maxDel: maxDelay}
}

// failed records n failures counted at now.
func (b *backoffs) failed(job types.UID, n int, now time.Time) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rec := b.byJob[job]
	rec.failures += n
	rec.last = now
	b.byJob[job] = rec
}

// succeeded resets the run of failures: a success shows the pods can work.
func (b *backoffs) succeeded(job types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byJob, job)
}

// wait returns how long the Job must still wait before creating pods.
func (b *backoffs) wait(job types.UID, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.byJob[job]
	if !ok {
		return 0
	}
	return max(rec.last.Add(backoffDelay(rec.failures, b.base, b.maxDel)).Sub(now), 0)
}

func (b *backoffs) forget(job types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byJob, job)
}
