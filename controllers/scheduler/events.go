package scheduler

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The Scheduled Events are paced: each is an apiserver write as costly as
// the binding itself, and the event broadcaster sends every one at once
// in its own goroutine, so a burst of 10,000 bindings would carry 10,000
// Event writes competing with them and halve the binding rate. Small
// bursts get their Events at once; a big one gets them at this rate,
// after its bindings: while bindings wait for a worker, no Scheduled Event
// is sent at all. Beyond the backlog they are dropped, as the broadcaster
// itself drops Events when its queue is full.
const (
	scheduledEventRate    = 20
	scheduledEventBurst   = 200
	scheduledEventBacklog = 20000
)

// scheduledEvent is one "Successfully assigned" Event waiting its turn.
type scheduledEvent struct {
	pod  *skiffcorev1.Pod
	node string
}

// eventPacer emits Scheduled Events at a bounded rate.
type eventPacer struct {
	recorder events.EventRecorder
	pending  chan scheduledEvent
	// bindingsWaiting tells whether bindings are queued for the workers.
	bindingsWaiting func() bool
}

func newEventPacer(recorder events.EventRecorder, bindingsWaiting func() bool) *eventPacer {
	return &eventPacer{recorder: recorder, pending: make(chan scheduledEvent, scheduledEventBacklog), bindingsWaiting: bindingsWaiting}
}

// scheduled queues the Event for a pod bound to node, or drops it when the
// backlog is full.
func (e *eventPacer) scheduled(pod *skiffcorev1.Pod, node string) {
	select {
	case e.pending <- scheduledEvent{pod, node}:
	default:
	}
}

// run emits the queued Events until ctx ends.
func (e *eventPacer) run(ctx context.Context) {
	limiter := rate.NewLimiter(scheduledEventRate, scheduledEventBurst)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-e.pending:
			if !e.waitForIdleBindings(ctx) || limiter.Wait(ctx) != nil {
				return
			}
			e.recorder.Eventf(ev.pod, nil, corev1.EventTypeNormal, "Scheduled", "Binding",
				"Successfully assigned %s/%s to %s", ev.pod.Namespace, ev.pod.Name, ev.node)
		}
	}
}

// waitForIdleBindings blocks while bindings are waiting; it reports false
// when ctx ends first.
func (e *eventPacer) waitForIdleBindings(ctx context.Context) bool {
	for e.bindingsWaiting() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true
}
