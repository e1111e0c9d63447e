// Package nodeagent is skiff's kubelet: it registers Nodes, heartbeats
// their Leases, and runs the pods bound to them through a Runtime,
// reporting their status. One process hosts one real node, or many
// simulated ones that share one client and one cache.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"skiff.dev/skiff/api"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/recorder"
)

// Options configures a Host. Zero values take upstream's defaults.
type Options struct {
	// Nodes are the nodes the host runs; at least one.
	Nodes []NodeConfig
	// NewRuntime makes the runtime of one node.
	NewRuntime func(node string) Runtime

	// LeaseDuration is the Lease's leaseDurationSeconds (40s), and
	// LeaseRenewInterval how often it is renewed (10s).
	LeaseDuration      time.Duration
	LeaseRenewInterval time.Duration
	// StatusUpdateFrequency is how often the agent compares its node's
	// status with what it would report (10s); StatusReportFrequency how
	// often it rewrites it when nothing changed (5m).
	StatusUpdateFrequency time.Duration
	StatusReportFrequency time.Duration
	// RegistrationWorkers bounds how many nodes register at once (32).
	RegistrationWorkers int
	// PodWorkers is how many pods are synced at once (16).
	PodWorkers int

	// MetricsBindAddress and HealthProbeBindAddress are the manager's
	// endpoints; "0" or empty turns one off.
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// Clock is the agent's time; the real clock when nil.
	Clock clock.PassiveClock
}

func (o *Options) defaults() error {
	if len(o.Nodes) == 0 {
		return errors.New("a node agent must host at least one node")
	}
	if o.NewRuntime == nil {
		return errors.New("no runtime: set Options.NewRuntime")
	}
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("node names must be set and unique, got %q twice or empty", n.Name)
		}
		seen[n.Name] = true
	}
	setDefault(&o.LeaseDuration, 40*time.Second)
	setDefault(&o.LeaseRenewInterval, 10*time.Second)
	setDefault(&o.StatusUpdateFrequency, 10*time.Second)
	setDefault(&o.StatusReportFrequency, 5*time.Minute)
	setDefault(&o.RegistrationWorkers, 32)
	setDefault(&o.PodWorkers, 16)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.LeaseDuration < time.Second {
		return fmt.Errorf("lease duration must be at least 1s, got %s", o.LeaseDuration)
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Host runs the agents of one or more nodes in one process, with one
// manager: one client, one cache, one pod informer dispatching pods to
// their node's agent.
type Host struct {
	opts   Options
	mgr    manager.Manager
	client client.Client
	reader client.Reader
	clock  clock.PassiveClock
	// events records the Events of the kubelet, about its nodes and pods.
	events events.EventRecorder

	agents map[string]*agent
	// readsAPI is set when a runtime reads ConfigMaps and Secrets, which
	// the host then watches.
	readsAPI   bool
	register   func(context.Context, *agent) (*skiffcorev1.Node, error)
	registered atomic.Int64

	// running maps the pods handed to a runtime to their node, so that a
	// pod that vanished from the API can still be stopped.
	mu      sync.Mutex
	running map[types.NamespacedName]runningPod
	// starts times the pods' starts, for the start latency metrics.
	starts *podStartTracker
}

type runningPod struct {
	uid  types.UID
	node string
}

// agent is the state of one hosted node.
type agent struct {
	cfg     NodeConfig
	runtime Runtime

	mu     sync.Mutex
	cancel context.CancelFunc
	halted atomic.Bool
	done   chan struct{}

	registeredOnce atomic.Bool
	// unschedulable is the spec.unschedulable last seen, false before
	// any as upstream's kubelet starts, so that a change is told once.
	unschedulable atomic.Bool
}

func (a *agent) stopped() bool { return a.halted.Load() }

// NewHost prepares a host for the nodes of opts against the cluster of cfg.
func NewHost(cfg *rest.Config, opts Options) (*Host, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	h := &Host{opts: opts, clock: opts.Clock, agents: map[string]*agent{}, running: map[types.NamespacedName]runningPod{}, starts: newPodStartTracker()}
	for _, n := range opts.Nodes {
		h.agents[n.Name] = &agent{cfg: n, runtime: opts.NewRuntime(n.Name), done: make(chan struct{})}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 api.NewScheme(),
		Cache:                  h.cacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: orOff(opts.MetricsBindAddress)},
		HealthProbeBindAddress: orOff(opts.HealthProbeBindAddress),
		// A test may run several hosts in one process, one after another.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the node agent's manager: %w", err)
	}
	h.mgr, h.client, h.reader = mgr, mgr.GetClient(), mgr.GetAPIReader()
	h.events = recorder.New(mgr, "kubelet")
	for _, a := range h.agents {
		if u, ok := a.runtime.(APIUser); ok {
			u.UseAPI(h.client, h.events)
			h.readsAPI = true
		}
	}
	sem := make(chan struct{}, opts.RegistrationWorkers)
	h.register = func(ctx context.Context, a *agent) (*skiffcorev1.Node, error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-sem }()
		node, err := a.register(ctx, h.client, h.reader)
		if err == nil && a.registeredOnce.CompareAndSwap(false, true) {
			h.registered.Add(1)
			h.events.Eventf(node, nil, corev1.EventTypeNormal, "Starting", "StartKubelet", "Starting kubelet.")
		}
		return node, err
	}
	if err := h.setup(); err != nil {
		return nil, err
	}
	return h, nil
}

func orOff(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

// cacheOptions restricts the cache to the one node's Node and pods when
// the host runs a single node, as a real kubelet watches only its own.
// A host of many simulated nodes watches everything once instead of once
// per node.
func (h *Host) cacheOptions() cache.Options {
	if len(h.opts.Nodes) != 1 {
		return cache.Options{}
	}
	name := h.opts.Nodes[0].Name
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&skiffcorev1.Pod{}:  {Field: fields.OneTermEqualSelector("spec.nodeName", name)},
		&skiffcorev1.Node{}: {Field: fields.OneTermEqualSelector("metadata.name", name)},
	}}
}

// setup registers the node and pod controllers, the heartbeats and the
// health checks with the manager.
func (h *Host) setup() error {
	hostedNode := predicate.NewPredicateFuncs(func(o client.Object) bool { return h.agents[o.GetName()] != nil })
	if err := ctrl.NewControllerManagedBy(h.mgr).
		Named("nodeagent-node").
		For(&skiffcorev1.Node{}, builder.WithPredicates(hostedNode)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(&nodeReconciler{host: h}); err != nil {
		return err
	}
	hostedPod := predicate.NewPredicateFuncs(func(o client.Object) bool {
		p, ok := o.(*skiffcorev1.Pod)
		return ok && h.agents[p.Spec.NodeName] != nil
	})
	changes := make(chan event.GenericEvent, 1024)
	pods := ctrl.NewControllerManagedBy(h.mgr).
		Named("nodeagent-pod").
		For(&skiffcorev1.Pod{}, builder.WithPredicates(hostedPod)).
		WatchesRawSource(source.Channel(changes, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: h.opts.PodWorkers})
	if h.readsAPI {
		pods = pods.
			Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(h.podsUsing("ConfigMap"))).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(h.podsUsing("Secret")))
	}
	if err := pods.Complete(&podReconciler{host: h}); err != nil {
		return err
	}
	if err := h.mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return h.watchRuntimes(ctx, changes)
	})); err != nil {
		return err
	}
	if err := h.mgr.Add(manager.RunnableFunc(h.runHeartbeats)); err != nil {
		return err
	}
	if err := h.mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	return h.mgr.AddReadyzCheck("registered", func(*http.Request) error {
		if n, want := h.registered.Load(), int64(len(h.agents)); n < want {
			return fmt.Errorf("%d of %d nodes registered", n, want)
		}
		return nil
	})
}

// Start runs the host until ctx ends: it registers every node, keeps their
// Leases and statuses, and runs their pods.
func (h *Host) Start(ctx context.Context) error {
	return h.mgr.Start(ctx)
}

// runHeartbeats starts one heartbeat per node and waits for them all, so
// that the manager's shutdown waits until none is left running.
func (h *Host) runHeartbeats(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, a := range h.agents {
		actx, cancel := context.WithCancel(ctx)
		a.mu.Lock()
		a.cancel = cancel
		halted := a.halted.Load()
		a.mu.Unlock()
		if halted {
			cancel()
			close(a.done)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(a.done)
			a.heartbeat(log.IntoContext(actx, log.FromContext(ctx)), h)
		}()
	}
	wg.Wait()
	return nil
}

// StopNode stops one node's agent as if its machine went away: its Lease
// is no longer renewed, its status no longer reported, and its pods are
// left as they are. The other nodes carry on. It returns once the node's
// heartbeat has ended.
func (h *Host) StopNode(name string) error {
	a := h.agents[name]
	if a == nil {
		return fmt.Errorf("node %q is not hosted here", name)
	}
	a.mu.Lock()
	a.halted.Store(true)
	cancel := a.cancel
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-a.done
	}
	return nil
}

// Client is the host's cached client, for parts that serve its nodes.
func (h *Host) Client() client.Client { return h.client }

// Add runs r with the host, as its logs and exec server.
func (h *Host) Add(r manager.Runnable) error { return h.mgr.Add(r) }

// Manager is the host's manager, for controllers that serve its nodes
// (the proxy).
func (h *Host) Manager() manager.Manager { return h.mgr }

// NodeNames lists the hosted nodes, sorted.
func (h *Host) NodeNames() []string {
	names := make([]string, 0, len(h.agents))
	for n := range h.agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Registered reports how many hosted nodes have registered at least once.
func (h *Host) Registered() int { return int(h.registered.Load()) }

// agent returns the running agent of a hosted node, or nil.
func (h *Host) agent(name string) *agent { return h.agents[name] }
