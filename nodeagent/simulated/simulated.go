// Package simulated is a container runtime that runs nothing, as kwok does:
// pods start, run, exit and restart on a timetable, so that one process can
// host many nodes for tests and benchmarks. The timetable comes from the
// runtime's options and from per-pod annotations:
//
//	simulate.skiff.dev/run-seconds: "5"  each container exits after 5s
//	simulate.skiff.dev/exit-code:   "1"  ... with exit code 1
//
// Without them, containers of pods with restartPolicy Never or OnFailure
// exit 0 after the run duration, and those of pods with restartPolicy
// Always run until the pod is killed. Readiness is immediate: probes are
// not simulated.
package simulated

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
)

// The annotations that script a simulated pod.
const (
	RunSecondsAnnotation = "simulate.skiff.dev/run-seconds"
	ExitCodeAnnotation   = "simulate.skiff.dev/exit-code"
)

// Version is what the runtime reports as the node's container runtime.
const Version = "simulated://0.1"

// maxBackoff caps the restart back-off, as upstream's kubelet does.
const maxBackoff = 5 * time.Minute

// Options is the simulated runtime's timetable.
type Options struct {
	// StartDelay is how long containers take to start.
	StartDelay time.Duration
	// RunDuration is how long containers of pods with restartPolicy Never
	// or OnFailure run before they exit.
	RunDuration time.Duration
	// RestartBackoff is the wait before the first restart of an exited
	// container, doubled for each further restart up to 5 minutes, as
	// upstream's CrashLoopBackOff. Zero means upstream's 10s; it is at
	// least a second, so that a crash loop cannot spin.
	RestartBackoff time.Duration
	// Clock is the runtime's time; the real clock when nil.
	Clock clock.PassiveClock
}

// Runtime is one simulated node's runtime. It is safe for concurrent use.
type Runtime struct {
	opts Options

	mu   sync.Mutex
	pods map[types.UID]*pod
	ips  *ipPool
	cidr string
}

var _ nodeagent.Runtime = &Runtime{}

// New returns an empty simulated runtime.
func New(opts Options) *Runtime {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.RestartBackoff == 0 {
		opts.RestartBackoff = 10 * time.Second
	}
	opts.RestartBackoff = max(opts.RestartBackoff, time.Second)
	return &Runtime{opts: opts, pods: map[types.UID]*pod{}}
}

// pod is what the runtime holds of one pod.
type pod struct {
	namespace, name string
	ip              netip.Addr
	init            []*container
	containers      []*container
}

// container is one simulated container's timetable and state.
type container struct {
	name, image string
	podUID      types.UID
	policy      corev1.RestartPolicy
	// runFor is how long each run lasts; negative runs until killed.
	runFor   time.Duration
	exitCode int32

	state        containerState
	restarting   bool      // waiting in back-off, not being created
	nextStart    time.Time // when a waiting container starts
	startedAt    time.Time
	finishedAt   time.Time
	exit         int32
	restartCount int32
	last         *corev1.ContainerStateTerminated
}

type containerState int

const (
	waiting containerState = iota
	running
	exited
)

// SyncPod creates the pod's containers on first sight and advances their
// timetable to now.
func (r *Runtime) SyncPod(_ context.Context, p *skiffcorev1.Pod) (nodeagent.RuntimePodStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Clock.Now()
	sp, ok := r.pods[p.UID]
	if !ok {
		var err error
		if sp, err = r.create(p, now); err != nil {
			return nodeagent.RuntimePodStatus{}, err
		}
		r.pods[p.UID] = sp
	}
	var status nodeagent.RuntimePodStatus
	if sp.ip.IsValid() {
		status.PodIP = sp.ip.String()
	}
	for _, c := range sp.init {
		status.NextChange = earliest(status.NextChange, c.advance(now, r.opts.RestartBackoff))
		if s, ok := c.status(); ok {
			status.InitContainers = append(status.InitContainers, s)
		}
	}
	for _, c := range sp.containers {
		status.NextChange = earliest(status.NextChange, c.advance(now, r.opts.RestartBackoff))
		if s, ok := c.status(); ok {
			status.Containers = append(status.Containers, s)
		}
	}
	return status, nil
}

// create lays out a new pod's containers. Init containers exit 0 at once
// (sidecars keep running); app containers start after the start delay.
func (r *Runtime) create(p *skiffcorev1.Pod, now time.Time) (*pod, error) {
	runFor, exitCode, err := script(p, r.opts.RunDuration)
	if err != nil {
		return nil, err
	}
	sp := &pod{namespace: p.Namespace, name: p.Name}
	if r.ips != nil {
		if sp.ip, err = r.adoptOrAllocateIP(p); err != nil {
			return nil, err
		}
	}
	start := now.Add(r.opts.StartDelay)
	for _, c := range p.Spec.InitContainers {
		ic := &container{name: c.Name, image: c.Image, podUID: p.UID, policy: corev1.RestartPolicyNever, nextStart: start}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			ic.policy, ic.runFor = corev1.RestartPolicyAlways, -1
		}
		sp.init = append(sp.init, ic)
	}
	for _, c := range p.Spec.Containers {
		sc := &container{
			name: c.Name, image: c.Image, podUID: p.UID, policy: p.Spec.RestartPolicy,
			runFor: runFor, exitCode: exitCode, nextStart: start,
		}
		sc.adopt(p.Status.ContainerStatuses)
		sp.containers = append(sp.containers, sc)
	}
	return sp, nil
}

// adoptOrAllocateIP keeps the address the pod already reports, when it is
// still free in the podCIDR, so that an agent that restarts does not
// renumber its pods; otherwise it allocates one.
func (r *Runtime) adoptOrAllocateIP(p *skiffcorev1.Pod) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && r.ips.usable(ip) && !r.ips.used[ip] {
		r.ips.used[ip] = true
		return ip, nil
	}
	return r.ips.allocate()
}

// adopt takes over a container that the pod reports running, as a
// restarted agent finds its containers still running: its run goes on
// from when it started, with its restart count.
func (c *container) adopt(statuses []corev1.ContainerStatus) {
	for _, s := range statuses {
		if s.Name != c.name || s.State.Running == nil {
			continue
		}
		c.state, c.startedAt, c.restartCount = running, s.State.Running.StartedAt.Time, s.RestartCount
		if t := s.LastTerminationState.Terminated; t != nil {
			c.last = t.DeepCopy()
		}
	}
}

// script reads how long the pod's containers run and how they exit: from
// its annotations, else until killed for restartPolicy Always, else the
// run duration with exit code 0.
func script(p *skiffcorev1.Pod, runDuration time.Duration) (time.Duration, int32, error) {
	runFor := time.Duration(-1)
	if p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		runFor = runDuration
	}
	var exitCode int32
	if v, ok := p.Annotations[ExitCodeAnnotation]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 || n > 255 {
			return 0, 0, fmt.Errorf("annotation %s: must be a whole number from 0 to 255, got %q", ExitCodeAnnotation, v)
		}
		exitCode = int32(n)
		if runFor < 0 {
			runFor = runDuration
		}
	}
	if v, ok := p.Annotations[RunSecondsAnnotation]; ok {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 {
			return 0, 0, fmt.Errorf("annotation %s: must be a number of seconds >= 0, got %q", RunSecondsAnnotation, v)
		}
		runFor = time.Duration(s * float64(time.Second))
	}
	return runFor, exitCode, nil
}

// advance moves the container through its timetable up to now and returns
// when its state changes next (zero: not on its own).
func (c *container) advance(now time.Time, backoff time.Duration) time.Time {
	for {
		switch c.state {
		case waiting:
			if now.Before(c.nextStart) {
				return c.nextStart
			}
			if c.restarting {
				c.restartCount++
			}
			c.state, c.restarting, c.startedAt = running, false, c.nextStart
		case running:
			if c.runFor < 0 {
				return time.Time{}
			}
			end := c.startedAt.Add(c.runFor)
			if now.Before(end) {
				return end
			}
			c.state, c.finishedAt, c.exit = exited, end, c.exitCode
		case exited:
			if !nodeagent.Restarts(c.policy, c.exit) {
				return time.Time{}
			}
			c.last = c.terminated()
			delay := min(backoff<<min(c.restartCount, 16), maxBackoff)
			c.state, c.restarting, c.nextStart = waiting, true, c.finishedAt.Add(delay)
		}
	}
}

// status reports the container as the runtime sees it; false while it is
// still being created.
func (c *container) status() (nodeagent.ContainerStatus, bool) {
	s := nodeagent.ContainerStatus{
		Name: c.name, ID: c.id(), Image: c.image, ImageID: imageID(c.image),
		RestartCount: c.restartCount,
	}
	if c.last != nil {
		s.LastTerminationState.Terminated = c.last.DeepCopy()
	}
	switch {
	case c.state == waiting && !c.restarting:
		return s, false
	case c.state == waiting:
		s.State.Waiting = &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s until %s", c.name, c.nextStart.UTC().Format(time.RFC3339)),
		}
	case c.state == running:
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
		s.Ready = true
	default:
		s.State.Terminated = c.terminated()
	}
	return s, true
}

func (c *container) terminated() *corev1.ContainerStateTerminated {
	reason := "Completed"
	if c.exit != 0 {
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode: c.exit, Reason: reason, ContainerID: c.id(),
		StartedAt: metav1.NewTime(c.startedAt), FinishedAt: metav1.NewTime(c.finishedAt),
	}
}

// id names the container's current run: a restart is a new container.
func (c *container) id() string {
	uid := string(c.podUID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return fmt.Sprintf("simulated://%s-%s-%d", uid, c.name, c.restartCount)
}

// imageID is a stable digest-like name for an image, as a real runtime
// reports the digest it pulled.
func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	return image + "@sha256:" + hex.EncodeToString(sum[:])
}

// KillPod stops the pod's running containers at once: simulated
// containers exit 0 on SIGTERM, so the grace period is never needed.
func (r *Runtime) KillPod(_ context.Context, p *skiffcorev1.Pod, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp, ok := r.pods[p.UID]
	if !ok {
		return nil
	}
	now := r.opts.Clock.Now()
	for _, c := range append(append([]*container{}, sp.init...), sp.containers...) {
		c.advance(now, r.opts.RestartBackoff)
		if c.state == running {
			c.finishedAt, c.exit = now, 0
		}
		if c.state != exited {
			c.state = exited
		}
		c.policy = corev1.RestartPolicyNever
	}
	r.releaseIP(sp)
	return nil
}

// releaseIP returns a stopped pod's address to the pool.
func (r *Runtime) releaseIP(sp *pod) {
	if sp.ip.IsValid() && r.ips != nil {
		r.ips.release(sp.ip)
	}
	sp.ip = netip.Addr{}
}

// RemovePod forgets the pod and releases its IP.
func (r *Runtime) RemovePod(_ context.Context, uid types.UID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sp, ok := r.pods[uid]; ok {
		r.releaseIP(sp)
		delete(r.pods, uid)
	}
	return nil
}

// ListPods lists the pods the runtime holds.
func (r *Runtime) ListPods(context.Context) ([]nodeagent.RuntimePod, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]nodeagent.RuntimePod, 0, len(r.pods))
	for uid, p := range r.pods {
		out = append(out, nodeagent.RuntimePod{UID: uid, Namespace: p.namespace, Name: p.name})
	}
	return out, nil
}

// UpdatePodCIDR sets the range new pods' IPs come from; pods that already
// have an address keep it.
func (r *Runtime) UpdatePodCIDR(cidr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cidr == r.cidr {
		return nil
	}
	if cidr == "" {
		r.ips, r.cidr = nil, ""
		return nil
	}
	pool, err := newIPPool(cidr)
	if err != nil {
		return err
	}
	for _, p := range r.pods {
		if p.ip.IsValid() && pool.prefix.Contains(p.ip) {
			pool.used[p.ip] = true
		}
	}
	r.ips, r.cidr = pool, cidr
	return nil
}

// Version names the runtime.
func (r *Runtime) Version() string { return Version }

// earliest is the earlier of two times, where zero means never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	default:
		return b
	}
}
