package containerd

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/prober"
)

// trackPod remembers which pod a UID is, so that a probe's change of
// verdict, which names only the UID, can be passed to the agent.
func (r *Runtime) trackPod(pod *skiffcorev1.Pod) {
	r.pods.Store(pod.UID, nodeagent.RuntimePod{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name})
}

// untrackPod forgets a pod and stops its probes.
func (r *Runtime) untrackPod(uid types.UID) {
	r.probes.RemovePod(uid)
	r.pods.Delete(uid)
	r.backoffTold.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), string(uid)+"/") {
			r.backoffTold.Delete(k)
		}
		return true
	})
}

// probeChanged tells the agent that one of a pod's probes changed its
// verdict, so that its readiness is reported (or its container restarted)
// at once.
func (r *Runtime) probeChanged(uid types.UID) {
	p, ok := r.pods.Load(uid)
	if !ok {
		return
	}
	r.mu.Lock()
	notify := r.notify
	r.mu.Unlock()
	if notify != nil {
		notify(p.(nodeagent.RuntimePod))
	}
}

// probedContainers are the containers that probes run for: the main
// containers and the sidecars (plain init containers have none).
func probedContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) {
			out = append(out, &spec.InitContainers[i])
		}
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// updateProbes starts probing each running container's latest run, and
// stops probing those that are not running.
func (r *Runtime) updateProbes(pod *skiffcorev1.Pod, runs podRuns, podIP string) {
	for _, c := range probedContainers(&pod.Spec) {
		rn := runs.latest(c.Name)
		if rn == nil || rn.State != stateRunning {
			r.probes.RemoveContainer(pod.UID, c.Name)
			continue
		}
		r.probes.AddContainer(pod.UID, c, rn.ID, prober.Target{PodIP: podIP, ContainerID: rn.ID, Execer: r}, rn.StartedAt)
	}
}

// killUnhealthy stops the running containers whose liveness or startup
// probe failed, so that the plan restarts them as their pod's policy says.
// It reports whether it stopped any.
func (r *Runtime) killUnhealthy(ctx context.Context, pod *skiffcorev1.Pod, runs podRuns) bool {
	killed := false
	for _, c := range probedContainers(&pod.Spec) {
		rn := runs.latest(c.Name)
		if rn == nil || rn.State != stateRunning {
			continue
		}
		failed, msg := r.probes.LivenessFailed(pod.UID, c.Name)
		if !failed {
			continue
		}
		r.event(pod, corev1.EventTypeWarning, "Unhealthy", "%s", msg)
		r.event(pod, corev1.EventTypeNormal, "Killing", "Container %s failed liveness probe, will be restarted", c.Name)
		_ = r.stop(ctx, rn.ctr, pod, probeGrace(pod, c))
		r.probes.RemoveContainer(pod.UID, c.Name)
		killed = true
	}
	return killed
}

// probeGrace is how long a container failing its liveness probe gets to
// stop: the probe's own terminationGracePeriodSeconds, else the pod's.
func probeGrace(pod *skiffcorev1.Pod, c *corev1.Container) time.Duration {
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
		if p != nil && p.TerminationGracePeriodSeconds != nil {
			return time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
		}
	}
	return gracePeriod(pod, 0)
}

// lockedWriter lets two streams write into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
