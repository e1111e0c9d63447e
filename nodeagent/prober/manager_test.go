package prober

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
)

// app is a container's HTTP endpoints whose health the test flips, and
// counts of the probes each received.
type app struct {
	mu      sync.Mutex
	healthy map[string]bool
	hits    map[string]int
	srv     *httptest.Server
}

func startApp(t *testing.T) *app {
	a := &app{healthy: map[string]bool{}, hits: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.hits[r.URL.Path]++
		if !a.healthy[r.URL.Path] {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *app) set(path string, healthy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.healthy[path] = healthy
}

func (a *app) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

// container is a container whose probes GET paths of the app every 10s.
func (a *app) container(t *testing.T, probes map[Kind]corev1.Probe) *corev1.Container {
	_, port := hostPort(t, a.srv.Listener.Addr().String())
	c := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	for kind, p := range probes {
		p.PeriodSeconds = 10
		p.HTTPGet = &corev1.HTTPGetAction{Path: "/" + string(kind), Port: intstr.FromString("http")}
		switch kind {
		case Liveness:
			c.LivenessProbe = &p
		case Readiness:
			c.ReadinessProbe = &p
		case Startup:
			c.StartupProbe = &p
		}
	}
	return c
}

// harness drives a Manager with a fake clock: tick moves time one probe
// period and waits until every probe goroutine has probed and waits again,
// so that each step sees the results of exactly one more round of probes.
type harness struct {
	t       *testing.T
	clk     *clocktesting.FakeClock
	m       *Manager
	changes atomic.Int32
	workers int
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, clk: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	h.m = NewManager(h.clk, func(types.UID) { h.changes.Add(1) })
	return h
}

const pod = types.UID("pod-1")

// add adds the container as containerID and waits for its first round,
// after the goroutines of the run it replaces have ended.
func (h *harness) add(c *corev1.Container, containerID string, target Target) {
	h.m.mu.Lock()
	old := h.m.pods[pod][c.Name]
	h.m.mu.Unlock()
	h.m.AddContainer(pod, c, containerID, target, h.clk.Now())
	if old != nil {
		old.workers.Wait()
	}
	h.t.Cleanup(func() { h.m.RemovePod(pod) })
	h.workers = 0
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			h.workers++
		}
	}
	h.settle()
}

func (h *harness) tick() {
	h.clk.Step(10 * time.Second)
	h.settle()
}

// settle waits until every probe goroutine waits on the clock again.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.clk.Waiters() != h.workers {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d probe goroutines wait on the clock, want %d", h.clk.Waiters(), h.workers)
		}
		time.Sleep(time.Millisecond)
	}
}

// verdicts is what the Manager says of the container, in one comparable
// value.
type verdicts struct {
	started, ready, mustRestart bool
	message                     string
}

func (h *harness) verdicts() verdicts {
	failed, msg := h.m.LivenessFailed(pod, "web")
	return verdicts{started: h.m.Started(pod, "web"), ready: h.m.Ready(pod, "web"), mustRestart: failed, message: msg}
}

func (h *harness) expect(step string, want verdicts, changes int32) {
	h.t.Helper()
	if got := h.verdicts(); got != want {
		h.t.Errorf("%s: %+v, want %+v", step, got, want)
	}
	if got := h.changes.Load(); got != changes {
		h.t.Errorf("%s: onChange called %d times, want %d", step, got, changes)
	}
}

func TestManagerReadinessAndLiveness(t *testing.T) {
	a := startApp(t)
	a.set("/Readiness", true)
	a.set("/Liveness", true)
	h := newHarness(t)
	c := a.container(t, map[Kind]corev1.Probe{
		Readiness: {SuccessThreshold: 2, FailureThreshold: 1},
		Liveness:  {FailureThreshold: 3},
	})
	target := Target{PodIP: "127.0.0.1"}
	h.add(c, "containerd://one", target)
	h.expect("first round: one success of two", verdicts{started: true}, 0)
	h.tick()
	h.expect("second success: ready", verdicts{started: true, ready: true}, 1)

	a.set("/Readiness", false)
	a.set("/Liveness", false)
	h.tick()
	h.expect("one failure: unready, still alive", verdicts{started: true}, 2)
	h.tick()
	h.expect("two liveness failures: still alive", verdicts{started: true}, 2)
	h.tick()
	failed := verdicts{started: true, mustRestart: true, message: "Liveness probe failed: HTTP probe failed with statuscode: 500"}
	h.expect("third liveness failure: restart", failed, 3)

	hits := a.count("/Liveness")
	h.tick()
	h.tick()
	if got := a.count("/Liveness"); got != hits {
		t.Errorf("the failed liveness probe ran %d more times; it must wait for the restarted container", got-hits)
	}
	h.expect("the verdict stays until the restart", failed, 3)

	a.set("/Readiness", true)
	a.set("/Liveness", true)
	h.m.AddContainer(pod, c, "containerd://one", target, h.clk.Now())
	h.expect("adding the same container again changes nothing", failed, 3)
	h.add(c, "containerd://two", target)
	h.expect("the restarted container: alive, not ready yet", verdicts{started: true}, 3)
	if got := a.count("/Liveness"); got != hits+1 {
		t.Errorf("liveness probes after the restart: %d, want 1", got-hits)
	}
	h.tick()
	h.expect("the restarted container is ready", verdicts{started: true, ready: true}, 4)

	h.m.RemovePod(pod)
	h.workers = 0
	h.settle()
	h.expect("a removed pod is not ready", verdicts{}, 4)
}

func TestManagerStartupGates(t *testing.T) {
	a := startApp(t)
	a.set("/Liveness", true)
	h := newHarness(t)
	c := a.container(t, map[Kind]corev1.Probe{
		Startup:  {FailureThreshold: 3},
		Liveness: {FailureThreshold: 1},
	})
	h.add(c, "containerd://one", Target{PodIP: "127.0.0.1"})
	h.expect("starting", verdicts{}, 0)
	h.tick()
	h.expect("still starting", verdicts{}, 0)
	if got := a.count("/Liveness"); got != 0 {
		t.Errorf("liveness probed %d times before the container started", got)
	}

	a.set("/Startup", true)
	h.tick()
	h.expect("started: ready, as there is no readiness probe", verdicts{started: true, ready: true}, 1)
	startups := a.count("/Startup")
	h.tick()
	if a.count("/Liveness") != 1 || a.count("/Startup") != startups {
		t.Errorf("after the start: %d liveness and %d more startup probes, want 1 and 0", a.count("/Liveness"), a.count("/Startup")-startups)
	}
}

func TestManagerStartupFails(t *testing.T) {
	a := startApp(t)
	h := newHarness(t)
	c := a.container(t, map[Kind]corev1.Probe{Startup: {FailureThreshold: 2}})
	h.add(c, "containerd://one", Target{PodIP: "127.0.0.1"})
	h.tick()
	h.expect("two startup failures: restart", verdicts{mustRestart: true, message: "Startup probe failed: HTTP probe failed with statuscode: 500"}, 1)
}

func TestManagerInitialDelay(t *testing.T) {
	a := startApp(t)
	a.set("/Readiness", true)
	h := newHarness(t)
	c := a.container(t, map[Kind]corev1.Probe{Readiness: {InitialDelaySeconds: 15}})
	h.add(c, "containerd://one", Target{PodIP: "127.0.0.1"})
	h.tick()
	h.expect("10s after the start, within the delay", verdicts{started: true}, 0)
	h.tick()
	h.expect("20s after the start, probed once", verdicts{started: true, ready: true}, 1)
	if got := a.count("/Readiness"); got != 1 {
		t.Errorf("readiness probed %d times, want 1", got)
	}
}

func TestManagerWithoutProbes(t *testing.T) {
	h := newHarness(t)
	h.add(&corev1.Container{Name: "web"}, "containerd://one", Target{})
	h.expect("a container without probes is started and ready", verdicts{started: true, ready: true}, 0)
	h.m.RemoveContainer(pod, "web")
	h.expect("an exited container is neither", verdicts{}, 0)
}
