// Package recorder gives every controller its Event recorder, with
// upstream's spam filter in front of it. Each Event is an apiserver write;
// a ReplicaSet scaled to 1,000 would otherwise send 1,000 "Created pod"
// Events in the middle of the burst they describe. Upstream's recorder
// allows each object a burst of 25 Events and then one every 5 minutes,
// and so does this one.
package recorder

import (
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/lru"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Upstream's EventSourceObjectSpamFilter settings.
const (
	burstPerObject  = 25
	refillPerObject = 5 * time.Minute
	// objectsTracked bounds the memory of the filter, as upstream's LRU.
	objectsTracked = 4096
)

// New returns the Event recorder of a component (the Event's reporting
// controller), filtered per object.
func New(mgr ctrl.Manager, component string) events.EventRecorder {
	return Filter(mgr.GetEventRecorder(component))
}

// Filter puts the per-object spam filter in front of inner.
func Filter(inner events.EventRecorder) events.EventRecorder {
	return &filtered{inner: inner, limiters: lru.New(objectsTracked)}
}

type filtered struct {
	inner    events.EventRecorder
	limiters *lru.Cache // object UID -> *rate.Limiter; the cache locks itself
}

// Eventf records the Event unless its object has used up its share.
func (f *filtered) Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
	if !f.allow(regarding) {
		return
	}
	f.inner.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (f *filtered) allow(regarding runtime.Object) bool {
	obj, err := meta.Accessor(regarding)
	if err != nil || obj.GetUID() == "" {
		return true
	}
	key := obj.GetUID()
	if l, ok := f.limiters.Get(key); ok {
		return l.(*rate.Limiter).Allow()
	}
	l := rate.NewLimiter(rate.Every(refillPerObject), burstPerObject)
	f.limiters.Add(key, l)
	return l.Allow()
}
