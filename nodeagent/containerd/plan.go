package containerd

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/nodeagent"
)

// The kubelet's CrashLoopBackOff: a container that exits is restarted at
// once the first time, then after 10 s, doubling up to 5 minutes; a run of
// 10 minutes forgives the earlier crashes.
const (
	initialBackoff = 10 * time.Second
	maxBackoff     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

// runState is where one container's latest run is.
type runState int

const (
	stateCreated runState = iota // created in containerd, its task not started
	stateRunning
	stateExited
)

// observedContainer is what containerd holds of a container's latest run,
// read back from its labels and its task on every pass, so that an agent
// that restarts knows as much as the one before it.
type observedContainer struct {
	Name       string
	ID         string
	Attempt    int // 0 for the first run; also the restart count
	State      runState
	StartedAt  time.Time
	FinishedAt time.Time
	ExitCode   int32
	OOMKilled  bool
	// Crashes counts the quick exits in a row before this run, which the
	// back-off doubles on.
	Crashes int
}

// exitedQuickly reports whether an exited run counts as a crash for the
// back-off: one that ran for backoffReset or longer resets it.
func (o *observedContainer) exitedQuickly() bool {
	return o.FinishedAt.Sub(o.StartedAt) < backoffReset
}

// restartDelay is how long after its exit a container is started again,
// given the crashes in a row including this exit.
func restartDelay(crashes int) time.Duration {
	if crashes <= 1 {
		return 0
	}
	d := initialBackoff
	for i := 2; i < crashes && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// crashesAfter is the crash count a container's next run carries.
func crashesAfter(o *observedContainer) int {
	if !o.exitedQuickly() {
		return 1
	}
	return o.Crashes + 1
}

// podPlan is what one pass should do with a pod's containers.
type podPlan struct {
	// Start names the containers to start now, init containers first.
	Start []startAction
	// Kill lists running containers to stop: sidecars once the pod's
	// main containers are done for good.
	Kill []string
	// BackingOff holds the containers waiting to be restarted, and until
	// when.
	BackingOff map[string]time.Time
	// WakeAt is the earliest time the plan changes on its own (zero:
	// never); the agent syncs the pod again then.
	WakeAt time.Time
	// Failed is set when an init container failed under restartPolicy
	// Never: the pod's main containers never start.
	Failed bool
}

// startAction starts one container as its attempt-th run.
type startAction struct {
	Name    string
	Init    bool
	Attempt int
	Crashes int
}

// planPod decides, as the kubelet's computePodActions does, which of a
// pod's containers to start or stop now. observed maps a container's name
// to its latest run; a container missing from it never ran. It is pure:
// everything it needs is in its arguments.
func planPod(spec *corev1.PodSpec, observed map[string]*observedContainer, now time.Time) podPlan {
	plan := podPlan{BackingOff: map[string]time.Time{}}
	if !plan.initContainers(spec, observed, now) {
		return plan
	}
	mainDone := true
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if !plan.regular(c.Name, false, spec.RestartPolicy, observed[c.Name], now) {
			mainDone = false
		}
	}
	if mainDone && len(spec.Containers) > 0 {
		plan.stopSidecars(spec, observed)
	}
	return plan
}

// initContainers plans the init containers in order and reports whether
// all of them are done, so that the main containers may start. A sidecar
// (an init container with restartPolicy Always) is done once it runs, and
// is restarted whenever it exits.
func (p *podPlan) initContainers(spec *corev1.PodSpec, observed map[string]*observedContainer, now time.Time) bool {
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		o := observed[c.Name]
		if isSidecar(c) {
			p.regular(c.Name, true, corev1.RestartPolicyAlways, o, now)
			if o == nil || o.State != stateRunning {
				return false
			}
			continue
		}
		switch {
		case o == nil:
			p.Start = append(p.Start, startAction{Name: c.Name, Init: true, Crashes: 0})
			return false
		case o.State == stateCreated:
			p.Start = append(p.Start, resume(o, true))
			return false
		case o.State != stateExited:
			return false
		case o.ExitCode == 0:
			continue
		case spec.RestartPolicy == corev1.RestartPolicyNever:
			p.Failed = true
			return false
		default:
			p.restartAfterBackoff(c.Name, true, o, now)
			return false
		}
	}
	return true
}

// regular plans a container that runs alongside the others: it starts it
// if it never ran and restarts it after its back-off when policy allows.
// It reports whether the container is done for good.
func (p *podPlan) regular(name string, init bool, policy corev1.RestartPolicy, o *observedContainer, now time.Time) bool {
	switch {
	case o == nil:
		p.Start = append(p.Start, startAction{Name: name, Init: init})
		return false
	case o.State == stateCreated:
		p.Start = append(p.Start, resume(o, init))
		return false
	case o.State != stateExited:
		return false
	case !nodeagent.Restarts(policy, o.ExitCode):
		return true
	default:
		p.restartAfterBackoff(name, init, o, now)
		return false
	}
}

// resume starts a run that was created but never started (a pass cut
// short between the two), as the same attempt.
func resume(o *observedContainer, init bool) startAction {
	return startAction{Name: o.Name, Init: init, Attempt: o.Attempt, Crashes: o.Crashes}
}

// restartAfterBackoff starts an exited container again once its back-off
// has passed, and otherwise records that it waits.
func (p *podPlan) restartAfterBackoff(name string, init bool, o *observedContainer, now time.Time) {
	crashes := crashesAfter(o)
	at := o.FinishedAt.Add(restartDelay(crashes))
	if now.Before(at) {
		p.BackingOff[name] = at
		p.wake(at)
		return
	}
	p.Start = append(p.Start, startAction{Name: name, Init: init, Attempt: o.Attempt + 1, Crashes: crashes})
}

// stopSidecars stops the running sidecars once the main containers are
// done for good, as upstream ends a Job's pod: in reverse order of start.
func (p *podPlan) stopSidecars(spec *corev1.PodSpec, observed map[string]*observedContainer) {
	for i := len(spec.InitContainers) - 1; i >= 0; i-- {
		c := &spec.InitContainers[i]
		delete(p.BackingOff, c.Name)
		p.Start = dropStart(p.Start, c.Name)
		if o := observed[c.Name]; isSidecar(c) && o != nil && o.State == stateRunning {
			p.Kill = append(p.Kill, c.Name)
		}
	}
}

func dropStart(starts []startAction, name string) []startAction {
	out := starts[:0]
	for _, s := range starts {
		if s.Name != name {
			out = append(out, s)
		}
	}
	return out
}

func (p *podPlan) wake(at time.Time) {
	if p.WakeAt.IsZero() || at.Before(p.WakeAt) {
		p.WakeAt = at
	}
}

// isSidecar reports whether an init container is a sidecar: one with
// restartPolicy Always, which keeps running beside the main containers.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}
