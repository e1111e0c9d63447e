package containerd

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// event records an Event on a pod as the kubelet words it, so that
// `kubectl describe` and `kubectl get events` tell a pod's story (Pulled,
// Created, Started, Killing, BackOff, Unhealthy). A pod known only by its
// UID (one deleted while the agent was down) gets none.
func (r *Runtime) event(pod *skiffcorev1.Pod, eventtype, reason, format string, args ...any) {
	rec := r.recorder()
	if rec == nil || pod.Name == "" {
		return
	}
	rec.Eventf(pod, nil, eventtype, reason, reason, format, args...)
}

func (r *Runtime) recorder() events.EventRecorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events
}

// backOffEvents says, for each container waiting out its crash back-off,
// that it does, once per exit.
func (r *Runtime) backOffEvents(pod *skiffcorev1.Pod, runs podRuns, plan podPlan) {
	for name := range plan.BackingOff {
		// Once per exit: a pass that learns nothing new says nothing.
		key := fmt.Sprintf("%s/%s/%d", pod.UID, name, runs.latest(name).Attempt)
		if _, told := r.backoffTold.LoadOrStore(key, true); told {
			continue
		}
		r.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", name, pod.Name, pod.Namespace, pod.UID)
	}
}

// failedEvent reports why a container could not start.
func (r *Runtime) failedEvent(pod *skiffcorev1.Pod, f *startError) {
	switch f.reason {
	case "ImagePullBackOff":
		r.event(pod, corev1.EventTypeNormal, "BackOff", "%s", f.Error())
	case "PostStartHookError":
		r.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "%s", f.Error())
	default:
		r.event(pod, corev1.EventTypeWarning, "Failed", "Error: %s", f.Error())
	}
}
