package endpointslice

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// tracker remembers the slices this controller wrote until its cache has
// seen them, as upstream's endpointSliceTracker: a pass that planned from
// a cache missing its own last create would create the same endpoints
// again. Generations order the writes, since a slice has no status and
// every change to its content bumps metadata.generation.
type tracker struct {
	mu sync.Mutex
	// written maps a Service to its slices' last written generation;
	// deleted marks a slice this controller deleted.
	written map[types.NamespacedName]map[string]int64
}

const deleted = -1

func newTracker() *tracker { return &tracker{written: map[types.NamespacedName]map[string]int64{}} }

// record notes a write; generation is deleted for a deletion.
func (t *tracker) record(svc types.NamespacedName, slice string, generation int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written[svc] == nil {
		t.written[svc] = map[string]int64{}
	}
	t.written[svc][slice] = generation
}

// stale reports whether cached lacks a write of ours, forgetting the
// writes it has caught up with.
func (t *tracker) stale(svc types.NamespacedName, cached []skiffcorev1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := make(map[string]int64, len(cached))
	for i := range cached {
		seen[cached[i].Name] = cached[i].Generation
	}
	isStale := false
	for name, gen := range t.written[svc] {
		got, present := seen[name]
		switch {
		case gen == deleted && present, gen != deleted && (!present || got < gen):
			isStale = true
		default:
			delete(t.written[svc], name)
		}
	}
	if len(t.written[svc]) == 0 {
		delete(t.written, svc)
	}
	return isStale
}

// forget drops a Service that is gone.
func (t *tracker) forget(svc types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.written, svc)
}
