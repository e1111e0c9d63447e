package containerd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// KillPod stops every running container of the pod, as the kubelet does:
// SIGTERM (or the image's stop signal), then SIGKILL once grace has passed.
// Main containers stop first, together; sidecars after them, so that they
// serve the main containers to the end. Exits are recorded, so that the
// pod's status keeps how each container ended.
func (r *Runtime) KillPod(ctx context.Context, pod *skiffcorev1.Pod, grace time.Duration) error {
	ctx = r.ctx(ctx)
	// Probes stop first, as the kubelet's do: a container that is
	// shutting down must not be restarted for failing them.
	r.untrackPod(pod.UID)
	runs, err := r.observe(ctx, pod)
	if err != nil {
		return err
	}
	deadline := r.clock.Now().Add(grace)
	sidecars := sidecarNames(pod)
	var main, side []containerd.Container
	for name := range runs {
		rn := runs.latest(name)
		if rn.State == stateExited {
			continue
		}
		r.event(pod, corev1.EventTypeNormal, "Killing", "Stopping container %s", name)
		if sidecars[name] {
			side = append(side, rn.ctr)
		} else {
			main = append(main, rn.ctr)
		}
	}
	errs := []error{r.stopAll(ctx, main, pod, deadline), r.stopAll(ctx, side, pod, deadline)}
	if _, err := r.observe(ctx, pod); err != nil {
		errs = append(errs, err)
	}
	if r.cfg.Network != nil {
		teardown, cancel := uninterrupted(ctx)
		defer cancel()
		errs = append(errs, r.cfg.Network.Teardown(teardown, pod.UID))
	}
	return errors.Join(errs...)
}

// sidecarNames lists the pod's sidecars; none for a pod known only by UID.
func sidecarNames(pod *skiffcorev1.Pod) map[string]bool {
	out := map[string]bool{}
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			out[pod.Spec.InitContainers[i].Name] = true
		}
	}
	return out
}

// stopAll stops containers in parallel, all by the same deadline.
func (r *Runtime) stopAll(ctx context.Context, cs []containerd.Container, pod *skiffcorev1.Pod, deadline time.Time) error {
	errc := make(chan error, len(cs))
	for _, c := range cs {
		go func() { errc <- r.stop(ctx, c, pod, deadline.Sub(r.clock.Now())) }()
	}
	var errs []error
	for range cs {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// stop runs a container's preStop hook, sends it its stop signal and waits
// for it to exit until grace (hook included) has passed, then kills it. A
// container without a running task is left alone.
func (r *Runtime) stop(ctx context.Context, c containerd.Container, pod *skiffcorev1.Pod, grace time.Duration) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
		grace = 0
	}
	grace = r.preStop(ctx, pod, c, grace)
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("waiting for container %s: %w", c.ID(), err)
	}
	sig := stopSignal(ctx, c)
	if grace > 0 {
		if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("signalling container %s: %w", c.ID(), err)
		}
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("killing container %s: %w", c.ID(), err)
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopSignal is the image's STOPSIGNAL, or SIGTERM.
func stopSignal(ctx context.Context, c containerd.Container) syscall.Signal {
	img, err := c.Image(ctx)
	if err != nil {
		return syscall.SIGTERM
	}
	sig, err := containerd.GetOCIStopSignal(ctx, img, "SIGTERM")
	if err != nil {
		return syscall.SIGTERM
	}
	if s, err := containerd.ParseSignal(sig); err == nil {
		return s
	}
	return syscall.SIGTERM
}

// gracePeriod is the pod's termination grace period, or fallback when the
// pod has none.
func gracePeriod(pod *skiffcorev1.Pod, fallback time.Duration) time.Duration {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if fallback > 0 {
		return fallback
	}
	return 30 * time.Second
}

// podUIDOf reads the pod a container belongs to.
func podUIDOf(labels map[string]string) types.UID { return types.UID(labels[labelPodUID]) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
