package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/volumes"
)

// run is one run of a container: its containerd container and what the
// agent observed of it.
type run struct {
	ctr containerd.Container
	*observedContainer
	image string
}

// podRuns holds a pod's runs by container name, latest last.
type podRuns map[string][]*run

func (p podRuns) latest(name string) *run {
	rs := p[name]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

// previous is the run before the latest one, for lastState.
func (p podRuns) previous(name string) *run {
	rs := p[name]
	if len(rs) < 2 {
		return nil
	}
	return rs[len(rs)-2]
}

func (p podRuns) observed() map[string]*observedContainer {
	out := make(map[string]*observedContainer, len(p))
	for name := range p {
		out[name] = p.latest(name).observedContainer
	}
	return out
}

// SyncPod brings a pod's containers in line with its spec: it sets up the
// pod's sandbox, reads back what containerd holds, plans which containers
// to start, starts them, and reports what runs.
func (r *Runtime) SyncPod(ctx context.Context, pod *skiffcorev1.Pod) (nodeagent.RuntimePodStatus, error) {
	ctx = r.ctx(ctx)
	sb, err := r.sandbox(ctx, pod)
	if err != nil {
		return nodeagent.RuntimePodStatus{}, err
	}
	r.trackPod(pod)
	runs, err := r.observe(ctx, pod)
	if err != nil {
		return nodeagent.RuntimePodStatus{PodIP: sb.IP}, err
	}
	if r.killUnhealthy(ctx, pod, runs) {
		if runs, err = r.observe(ctx, pod); err != nil {
			return nodeagent.RuntimePodStatus{PodIP: sb.IP}, err
		}
	}
	now := r.clock.Now()
	plan := planPod(&pod.Spec, runs.observed(), now)
	failures := map[string]*startError{}
	started := false
	for _, s := range plan.Start {
		if err := r.start(ctx, pod, sb, s); err != nil {
			failures[s.Name] = asStartError(err)
			r.failedEvent(pod, failures[s.Name])
			continue
		}
		started = true
	}
	r.backOffEvents(pod, runs, plan)
	for _, name := range plan.Kill {
		if rn := runs.latest(name); rn != nil {
			_ = r.stop(ctx, rn.ctr, pod, gracePeriod(pod, 0))
		}
	}
	if started || len(plan.Kill) > 0 {
		if runs, err = r.observe(ctx, pod); err != nil {
			return nodeagent.RuntimePodStatus{PodIP: sb.IP}, err
		}
	}
	for _, f := range failures {
		if f.retryAt.IsZero() {
			// Nothing will tell the agent when a config error is fixed
			// (a ConfigMap created, say): look again, as the kubelet's
			// resync does.
			f.retryAt = now.Add(10 * time.Second)
		}
		plan.wake(f.retryAt)
	}
	r.updateProbes(pod, runs, sb.IP)
	if r.cfg.Files != nil {
		// ConfigMap, Secret and downward API volumes follow their
		// sources while the pod runs.
		if err := r.cfg.Files.Update(ctx, pod); err != nil && !volumes.IsConfigError(err) {
			return nodeagent.RuntimePodStatus{PodIP: sb.IP}, err
		}
	}
	status := r.podStatus(pod, runs, plan, failures)
	status.PodIP = sb.IP
	return status, nil
}

// observe reads back a pod's runs from containerd. A run whose task has
// exited is finalised on the way: its exit is written into its labels and
// its task deleted, so that its shim goes away and its end is kept.
func (r *Runtime) observe(ctx context.Context, pod *skiffcorev1.Pod) (podRuns, error) {
	cs, err := r.podContainers(ctx, pod.UID)
	if err != nil {
		return nil, fmt.Errorf("listing the containers of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	runs := podRuns{}
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		o := observeLabels(info.Labels)
		if o.State != stateExited {
			if o, err = r.observeTask(ctx, c, o); err != nil {
				return nil, err
			}
		}
		o.ID = c.ID()
		runs[o.Name] = append(runs[o.Name], &run{ctr: c, observedContainer: o, image: info.Labels[labelImageRef]})
	}
	for _, rs := range runs {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Attempt < rs[j].Attempt })
	}
	return runs, nil
}

// observeTask reads the state of a run that has not been seen to exit.
func (r *Runtime) observeTask(ctx context.Context, c containerd.Container, o *observedContainer) (*observedContainer, error) {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		if o.StartedAt.IsZero() {
			o.State = stateCreated
			return o, nil
		}
		// It ran, and its task is gone without a trace of its end (the
		// machine restarted): it ended, as upstream's kubelet reports a
		// container that vanished, with 137.
		return r.recordExit(ctx, c, o, 137, r.clock.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("reading the task of container %s: %w", c.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the status of container %s: %w", c.ID(), err)
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		o.State = stateRunning
		if o.StartedAt.IsZero() {
			// Started by an agent that stopped before it wrote the label.
			o.StartedAt = r.clock.Now()
			_, _ = c.SetLabels(ctx, map[string]string{labelStartedAt: formatTime(o.StartedAt)})
		}
	case containerd.Stopped:
		return r.finalize(ctx, c, task, o, st)
	default:
		o.State = stateCreated
	}
	return o, nil
}

// finalize records an exited run's end in its labels and deletes its task.
func (r *Runtime) finalize(ctx context.Context, c containerd.Container, task containerd.Task, o *observedContainer, st containerd.Status) (*observedContainer, error) {
	o, err := r.recordExit(ctx, c, o, int32(st.ExitStatus), exitTime(st, r.clock.Now()))
	if err != nil {
		return nil, err
	}
	del, cancel := uninterrupted(ctx)
	defer cancel()
	if _, err := task.Delete(del); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("deleting the exited task of container %s: %w", c.ID(), err)
	}
	return o, nil
}

// recordExit writes how a run ended into its container's labels.
func (r *Runtime) recordExit(ctx context.Context, c containerd.Container, o *observedContainer, code int32, at time.Time) (*observedContainer, error) {
	o.State, o.ExitCode, o.FinishedAt = stateExited, code, at
	if o.StartedAt.IsZero() {
		o.StartedAt = o.FinishedAt
	}
	labels := map[string]string{
		labelStartedAt:  formatTime(o.StartedAt),
		labelFinishedAt: formatTime(o.FinishedAt),
		labelExitCode:   fmt.Sprint(o.ExitCode),
	}
	if oomKilled(ctx, c) {
		o.OOMKilled, labels[labelOOMKilled] = true, "true"
	}
	if _, err := c.SetLabels(ctx, labels); err != nil {
		return nil, fmt.Errorf("recording the exit of container %s: %w", c.ID(), err)
	}
	return o, nil
}

// start runs a container as the given attempt: it makes its image present,
// creates the container with its spec and starts its task. A container or
// task left by an interrupted pass is picked up, not created twice.
func (r *Runtime) start(ctx context.Context, pod *skiffcorev1.Pod, sb *sandbox, s startAction) error {
	c := findContainer(&pod.Spec, s.Name)
	if c == nil {
		return fmt.Errorf("container %q is not in the pod's spec", s.Name)
	}
	id := containerID(string(pod.UID), c.Name, s.Attempt)
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		ctr, err = r.create(ctx, pod, c, sb, id, s)
	}
	if err != nil {
		return err
	}
	logPath := r.LogPath(pod, c.Name, s.Attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	task, err := ctr.NewTask(ctx, cio.BinaryIO(r.cfg.LogDriver, map[string]string{logDriverArg: logPath}))
	if errdefs.IsAlreadyExists(err) {
		task, err = ctr.Task(ctx, nil)
	}
	if err != nil {
		return &startError{reason: reasonRunContainerError, err: fmt.Errorf("creating the task of container %q: %w", c.Name, err)}
	}
	if err := task.Start(ctx); err != nil {
		del, cancel := uninterrupted(ctx)
		defer cancel()
		_, _ = task.Delete(del, containerd.WithProcessKill)
		return &startError{reason: reasonRunContainerError, err: fmt.Errorf("starting container %q: %w", c.Name, err)}
	}
	r.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	if _, err := ctr.SetLabels(ctx, map[string]string{labelStartedAt: formatTime(r.clock.Now())}); err != nil {
		return err
	}
	if err := r.postStart(ctx, pod, c, ctr, sb.IP); err != nil {
		return err
	}
	return r.pruneRuns(ctx, pod, c.Name, s.Attempt)
}

// create creates a run's container from its image and spec.
func (r *Runtime) create(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container, sb *sandbox, id string, s startAction) (containerd.Container, error) {
	img, err := r.image(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	env, mounts, err := r.filesFor(ctx, pod, c, sb)
	if err != nil {
		reason := reasonCreateContainerError
		if volumes.IsConfigError(err) {
			reason = reasonCreateContainerConfigError
		}
		return nil, &startError{reason: reason, err: err}
	}
	opts := r.specOpts(pod, c, sb, img, env, mounts, id)
	labels := map[string]string{
		labelPodUID:        string(pod.UID),
		labelPodName:       pod.Name,
		labelPodNamespace:  pod.Namespace,
		labelContainerName: c.Name,
		labelAttempt:       fmt.Sprint(s.Attempt),
		labelCrashes:       fmt.Sprint(s.Crashes),
		labelImageRef:      c.Image,
	}
	ctr, err := r.client.NewContainer(ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id, img),
		containerd.WithContainerLabels(labels),
		containerd.WithNewSpec(opts...),
	)
	if err != nil {
		return nil, &startError{reason: reasonCreateContainerError, err: fmt.Errorf("creating container %q: %w", c.Name, err)}
	}
	r.event(pod, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	return ctr, nil
}

// filesFor resolves a container's environment and mounts.
func (r *Runtime) filesFor(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container, sb *sandbox) ([]string, []specs.Mount, error) {
	if r.cfg.Files == nil {
		return plainEnv(c), nil, nil
	}
	env, err := r.cfg.Files.Env(ctx, pod, c, sb.IP, r.hostIP)
	if err != nil {
		return nil, nil, err
	}
	mounts, err := r.cfg.Files.Mounts(ctx, pod, c, sb.IP)
	return env, mounts, err
}

// plainEnv is a container's env with only plain values, for a runtime
// without PodFiles.
func plainEnv(c *corev1.Container) []string {
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env
}

// image returns a container's image, made present as its pull policy says.
func (r *Runtime) image(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container) (containerd.Image, error) {
	if r.cfg.Images != nil {
		_, presentErr := r.client.GetImage(ctx, normalizeImage(c.Image))
		began := r.clock.Now()
		if presentErr != nil && !r.cfg.Images.RetryAt(pod, c).After(began) {
			r.event(pod, corev1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
		}
		img, err := r.cfg.Images.Ensure(ctx, r.client, pod, c)
		if err != nil {
			return nil, &startError{reason: imageReason(err), err: err, retryAt: r.cfg.Images.RetryAt(pod, c)}
		}
		if presentErr == nil {
			r.event(pod, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
		} else {
			r.event(pod, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %s", c.Image, r.clock.Since(began).Round(time.Millisecond))
		}
		return img, nil
	}
	img, err := r.client.GetImage(ctx, normalizeImage(c.Image))
	if err != nil {
		return nil, &startError{reason: reasonErrImageNeverPull, err: fmt.Errorf("container image %q is not present on the node: load it into containerd's %q namespace", c.Image, r.cfg.Namespace)}
	}
	return img, nil
}

// pruneRuns deletes the runs of a container older than the previous one:
// the previous run is kept for its logs and lastState, as the kubelet does.
func (r *Runtime) pruneRuns(ctx context.Context, pod *skiffcorev1.Pod, name string, attempt int) error {
	for old := attempt - 2; old >= 0; old-- {
		c, err := r.client.LoadContainer(ctx, containerID(string(pod.UID), name, old))
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := deleteContainer(ctx, c); err != nil {
			return err
		}
		_ = os.Remove(r.LogPath(pod, name, old))
	}
	return nil
}

func findContainer(spec *corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == name {
			return &spec.InitContainers[i]
		}
	}
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

// The kubelet's waiting reasons for a container that could not start.
const (
	reasonErrImagePull               = "ErrImagePull"
	reasonErrImageNeverPull          = "ErrImageNeverPull"
	reasonCreateContainerConfigError = "CreateContainerConfigError"
	reasonCreateContainerError       = "CreateContainerError"
	reasonRunContainerError          = "RunContainerError"
	reasonCrashLoopBackOff           = "CrashLoopBackOff"
)

// startError is why a container could not start, with the kubelet's reason.
type startError struct {
	reason string
	err    error
	// retryAt is when to try again; zero retries on the next pass.
	retryAt time.Time
}

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

func asStartError(err error) *startError {
	var se *startError
	if errors.As(err, &se) {
		return se
	}
	return &startError{reason: reasonCreateContainerError, err: err}
}

// podStatus reports what runs: each container's latest run, its previous
// run's end, and why a container waits.
func (r *Runtime) podStatus(pod *skiffcorev1.Pod, runs podRuns, plan podPlan, failures map[string]*startError) nodeagent.RuntimePodStatus {
	var st nodeagent.RuntimePodStatus
	st.NextChange = plan.WakeAt
	for i := range pod.Spec.InitContainers {
		if cs, ok := r.containerStatus(pod, &pod.Spec.InitContainers[i], runs, plan, failures); ok {
			st.InitContainers = append(st.InitContainers, cs)
		}
	}
	for i := range pod.Spec.Containers {
		if cs, ok := r.containerStatus(pod, &pod.Spec.Containers[i], runs, plan, failures); ok {
			st.Containers = append(st.Containers, cs)
		}
	}
	return st
}

// containerStatus is one container's status; false when it has neither run
// nor failed to start, so that the agent reports it as being created.
func (r *Runtime) containerStatus(pod *skiffcorev1.Pod, c *corev1.Container, runs podRuns, plan podPlan, failures map[string]*startError) (nodeagent.ContainerStatus, bool) {
	latest, prev := runs.latest(c.Name), runs.previous(c.Name)
	cs := nodeagent.ContainerStatus{Name: c.Name, Image: c.Image}
	if f := failures[c.Name]; f != nil {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: f.reason, Message: f.Error()}
		if latest != nil {
			cs.RestartCount = int32(latest.Attempt)
			if latest.State == stateExited {
				cs.LastTerminationState.Terminated = terminated(latest)
			}
		}
		return cs, true
	}
	if latest == nil {
		return cs, false
	}
	cs.ID, cs.ImageID, cs.RestartCount = "containerd://"+latest.ID, latest.image, int32(latest.Attempt)
	if prev != nil && prev.State == stateExited {
		cs.LastTerminationState.Terminated = terminated(prev)
	}
	switch latest.State {
	case stateCreated:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	case stateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(latest.StartedAt)}
		cs.Ready = r.probes.Ready(pod.UID, c.Name)
		cs.StartupPending = !r.probes.Started(pod.UID, c.Name)
	case stateExited:
		if until, ok := plan.BackingOff[c.Name]; ok {
			cs.State.Waiting = &corev1.ContainerStateWaiting{
				Reason:  reasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", until.Sub(latest.FinishedAt).Round(time.Second), c.Name, pod.Name, pod.Namespace, pod.UID),
			}
			cs.LastTerminationState.Terminated = terminated(latest)
			break
		}
		cs.State.Terminated = terminated(latest)
	}
	return cs, true
}

// terminated is how a run ended, with the kubelet's reasons.
func terminated(rn *run) *corev1.ContainerStateTerminated {
	reason := "Completed"
	switch {
	case rn.OOMKilled:
		reason = "OOMKilled"
	case rn.ExitCode != 0:
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: rn.ExitCode, Reason: reason, ContainerID: "containerd://" + rn.ID,
		StartedAt: metav1.NewTime(rn.StartedAt), FinishedAt: metav1.NewTime(rn.FinishedAt),
	}
}
