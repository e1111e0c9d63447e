package prober

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Manager runs the probes of the containers a runtime runs and keeps their
// verdicts, so that the runtime can report readiness and restart containers
// that fail liveness or startup. Each probe runs in its own goroutine, every
// period, as the kubelet's probe workers do; the runtime only tells it which
// containers run (AddContainer, RemoveContainer, RemovePod) and asks.
type Manager struct {
	clk      clock.Clock
	onChange func(podUID types.UID)

	mu   sync.Mutex
	pods map[types.UID]map[string]*container // by pod, then container name
}

// container is one run of a container (one containerID) and its probes.
type container struct {
	id     string
	probes map[Kind]*probe // only those its spec has
	stop   context.CancelFunc
	// workers counts its probe goroutines, which end soon after stop.
	workers sync.WaitGroup
}

// probe is one probe of a container, its state and what the latest failure
// said, for the restart's event.
type probe struct {
	kind    Kind
	spec    *corev1.Probe
	th      thresholds
	state   state
	message string
}

// NewManager makes a Manager that times probes with clk and calls onChange
// with the pod's UID whenever one of its containers' verdicts changes, so
// that the agent syncs the pod at once instead of polling. onChange is
// called from the probe goroutines, without the Manager's lock held, and
// should only queue the pod; it may be called shortly after the pod was
// removed.
func NewManager(clk clock.Clock, onChange func(podUID types.UID)) *Manager {
	if onChange == nil {
		onChange = func(types.UID) {}
	}
	return &Manager{clk: clk, onChange: onChange, pods: map[types.UID]map[string]*container{}}
}

// AddContainer starts probing container c of the pod, running as
// containerID since startedAt (initialDelaySeconds count from then), at
// target. The runtime calls it on every sync of a running container: for the
// containerID already probed it does nothing, and for a new one (the
// container restarted) it stops the old run's probes and starts afresh, not
// ready and not started.
func (m *Manager) AddContainer(podUID types.UID, c *corev1.Container, containerID string, target Target, startedAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byName := m.pods[podUID]
	if byName == nil {
		byName = map[string]*container{}
		m.pods[podUID] = byName
	}
	if old := byName[c.Name]; old != nil {
		if old.id == containerID {
			return
		}
		old.stop()
	}
	ctx, stop := context.WithCancel(context.Background())
	run := &container{id: containerID, probes: map[Kind]*probe{}, stop: stop}
	byName[c.Name] = run
	c = c.DeepCopy()
	for kind, spec := range map[Kind]*corev1.Probe{Startup: c.StartupProbe, Readiness: c.ReadinessProbe, Liveness: c.LivenessProbe} {
		if spec == nil {
			continue
		}
		p := &probe{kind: kind, spec: spec, th: thresholdsOf(kind, spec), state: initialState(kind)}
		run.probes[kind] = p
		run.workers.Go(func() { m.work(ctx, podUID, c, run, p, target, startedAt) })
	}
}

// RemoveContainer stops probing the container, which has exited: it is no
// longer ready, started or failing.
func (m *Manager) RemoveContainer(podUID types.UID, containerName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if run := m.pods[podUID][containerName]; run != nil {
		run.stop()
		delete(m.pods[podUID], containerName)
	}
}

// RemovePod stops probing every container of the pod, which was killed.
func (m *Manager) RemovePod(podUID types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, run := range m.pods[podUID] {
		run.stop()
	}
	delete(m.pods, podUID)
}

// Ready says whether the container is ready: it has started and its
// readiness probe, if it has one, succeeded successThreshold times in a row
// since it last failed. A container the Manager does not probe is not ready.
func (m *Manager) Ready(podUID types.UID, containerName string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.pods[podUID][containerName]
	if run == nil || !run.started() {
		return false
	}
	p := run.probes[Readiness]
	return p == nil || p.state.verdict == Success
}

// Started says whether the container has started, for the container
// status's started field: its startup probe succeeded, or it has none. A
// container the Manager does not probe has not started.
func (m *Manager) Started(podUID types.UID, containerName string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.pods[podUID][containerName]
	return run != nil && run.started()
}

// LivenessFailed says whether the container must be restarted: its liveness
// probe failed failureThreshold times in a row, or its startup probe did
// before it ever succeeded. message says which and why, as the kubelet's
// event does ("Liveness probe failed: HTTP probe failed with statuscode:
// 500"). The verdict stays until the runtime adds the restarted container.
func (m *Manager) LivenessFailed(podUID types.UID, containerName string) (failed bool, message string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.pods[podUID][containerName]
	if run == nil {
		return false, ""
	}
	for _, kind := range []Kind{Startup, Liveness} {
		if p := run.probes[kind]; p != nil && p.state.verdict == Failure {
			return true, string(kind) + " probe failed: " + p.message
		}
	}
	return false, ""
}

// started says whether the container's startup probe, if any, succeeded.
// The caller holds m.mu.
func (run *container) started() bool {
	p := run.probes[Startup]
	return p == nil || p.state.verdict == Success
}

// work is a probe's goroutine: it waits for the initial delay, then probes
// once a period until ctx ends (the container was removed or replaced).
func (m *Manager) work(ctx context.Context, podUID types.UID, c *corev1.Container, run *container, p *probe, target Target, startedAt time.Time) {
	wait := startedAt.Add(p.th.initialDelay).Sub(m.clk.Now())
	for m.sleep(ctx, wait) {
		began := m.clk.Now()
		if m.probeOnce(ctx, podUID, c, run, p, target) {
			m.onChange(podUID)
		}
		wait = p.th.period - m.clk.Since(began)
	}
}

// sleep waits d on the Manager's clock and says whether to go on.
func (m *Manager) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := m.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

// probeOnce runs the probe if it is due, records the result and says
// whether the container's verdict changed. A result that comes back after
// the container was removed or replaced is thrown away.
func (m *Manager) probeOnce(ctx context.Context, podUID types.UID, c *corev1.Container, run *container, p *probe, target Target) bool {
	m.mu.Lock()
	isDue := due(p.kind, p.state, run.started())
	m.mu.Unlock()
	if !isDue {
		return false
	}
	result, message := Probe(ctx, p.spec, c, target)
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	var changed bool
	p.state, changed = observe(p.kind, p.th, p.state, result)
	if result == Failure {
		p.message = message
	}
	return changed
}
