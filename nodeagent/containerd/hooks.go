package containerd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/prober"
)

// postStartTimeout bounds a postStart hook; upstream gives it no limit
// but the pod's, which would hold the pod's sync forever.
const postStartTimeout = 2 * time.Minute

// runHook runs a lifecycle handler for a container, as the kubelet does:
// an exec in the container, an HTTP GET to the pod, or a sleep. It returns
// an error, with the handler's output, when the handler fails.
func (r *Runtime) runHook(ctx context.Context, h *corev1.LifecycleHandler, c *corev1.Container, containerID, podIP string, timeout time.Duration) error {
	switch {
	case h.Exec != nil:
		code, out, err := r.ExecProbe(ctx, containerID, h.Exec.Command, timeout)
		if err != nil {
			return fmt.Errorf("exec %q: %w", h.Exec.Command, err)
		}
		if code != 0 {
			return fmt.Errorf("exec %q exited with %d: %s", h.Exec.Command, code, strings.TrimSpace(string(out)))
		}
	case h.HTTPGet != nil:
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: h.HTTPGet}, TimeoutSeconds: int32(max(timeout/time.Second, 1))}
		if res, msg := prober.Probe(ctx, p, c, prober.Target{PodIP: podIP, ContainerID: containerID, Execer: r}); res == prober.Failure || res == prober.Unknown {
			return fmt.Errorf("http get: %s", msg)
		}
	case h.Sleep != nil:
		select {
		case <-time.After(min(time.Duration(h.Sleep.Seconds)*time.Second, timeout)):
		case <-ctx.Done():
		}
	}
	return nil
}

// postStart runs a container's postStart hook once its task started. A
// failed hook kills the container, which then restarts as its pod's
// policy says, as upstream.
func (r *Runtime) postStart(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container, ctr containerd.Container, podIP string) error {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return nil
	}
	if err := r.runHook(ctx, c.Lifecycle.PostStart, c, ctr.ID(), podIP, postStartTimeout); err != nil {
		_ = r.stop(ctx, ctr, pod, 0)
		return &startError{reason: "PostStartHookError", err: fmt.Errorf("postStart hook of container %q failed: %w", c.Name, err)}
	}
	return nil
}

// preStop runs a container's preStop hook before its stop signal, within
// the grace period, and returns what is left of it.
func (r *Runtime) preStop(ctx context.Context, pod *skiffcorev1.Pod, ctr containerd.Container, grace time.Duration) time.Duration {
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return grace
	}
	c := findContainer(&pod.Spec, labels[labelContainerName])
	if c == nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || grace <= 0 {
		return grace
	}
	start := r.clock.Now()
	hctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	// A failed preStop hook does not stop the termination, as upstream.
	if err := r.runHook(hctx, c.Lifecycle.PreStop, c, ctr.ID(), pod.Status.PodIP, grace); err != nil {
		r.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
	}
	return max(grace-r.clock.Since(start), 0)
}
