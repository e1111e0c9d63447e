// Package scheduler places pods that have no spec.nodeName on a node: it
// filters the nodes, scores the ones that pass, and binds the pod to the best.
//
// It is upstream's kube-scheduler in miniature: a priority queue of pending
// pods, a cache of nodes fed by informers in which chosen pods are assumed
// at once, one scheduling cycle at a time against that cache, bindings
// written in parallel, and preemption of lower-priority pods when a pod fits
// nowhere. The decisions (filters, scores, preemption) are pure functions
// of the cache, in their own files; this file wires them to the manager.
//
// Left out, compared with upstream: PodDisruptionBudgets in preemption,
// non-empty namespaceSelectors in pod affinity (Namespaces are not
// watched), matchLabelKeys and the node inclusion policies of topology
// spread constraints, the default spreading of a Service's pods, and
// PreferNoSchedule taints in scoring.
package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/recorder"
)

// Config is the scheduler's configuration, from the manager's flags.
type Config struct {
	// Scoring is LeastAllocated (spread pods out, the default) or
	// MostAllocated (bin packing).
	Scoring string
	// PercentageOfNodesToScore bounds how many feasible nodes are scored
	// for each pod, as upstream's setting; 0 picks upstream's adaptive value.
	PercentageOfNodesToScore int32
	// BindWorkers is how many bindings may be in flight at once.
	BindWorkers int
}

// SchedulerName is the spec.schedulerName this scheduler serves, besides "".
const SchedulerName = corev1.DefaultSchedulerName

// validate fills defaults and refuses values the scheduler cannot use.
func (c *Config) validate() error {
	switch c.Scoring {
	case "":
		c.Scoring = LeastAllocated
	case LeastAllocated, MostAllocated:
	default:
		return fmt.Errorf("scheduler scoring: must be %s or %s, got %q", LeastAllocated, MostAllocated, c.Scoring)
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("percentage of nodes to score: must be 0 (adaptive) to 100, got %d", c.PercentageOfNodesToScore)
	}
	if c.BindWorkers <= 0 {
		c.BindWorkers = 16
	}
	return nil
}

// Setup registers the scheduler with the manager. It runs only on the
// elected leader, as upstream's.
func Setup(mgr ctrl.Manager, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	rec := recorder.New(mgr, SchedulerName)
	s := &Scheduler{
		cfg:        cfg,
		client:     mgr.GetClient(),
		informers:  mgr.GetCache(),
		recorder:   rec,
		log:        mgr.GetLogger().WithName("scheduler"),
		cache:      NewCache(time.Now),
		queue:      NewQueue(time.Now),
		algo:       newAlgorithm(cfg),
		priorities: newPriorityClasses(),
		work:       make(chan func(context.Context), cfg.BindWorkers),
	}
	s.events = newEventPacer(rec, func() bool { return len(s.work) > 0 })
	return mgr.Add(s)
}

// The scheduler reads nodes and priority classes, binds pods (a patch),
// reports failures in their status, and deletes preemption victims.
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch;update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=priorityclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims;persistentvolumes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Scheduler is the shell around the pure core: informers feed the cache
// and the queue, one goroutine runs the scheduling cycles, and a pool of
// workers writes the bindings and failures.
type Scheduler struct {
	cfg        Config
	client     client.Client
	informers  crcache.Informers
	recorder   events.EventRecorder
	events     *eventPacer
	log        logr.Logger
	cache      *Cache
	queue      *Queue
	algo       *algorithm
	priorities *priorityClasses
	// work carries the writes (bindings, failures) to the workers.
	work chan func(context.Context)
}

// Start runs the scheduler until ctx ends.
func (s *Scheduler) Start(ctx context.Context) error {
	if err := s.watch(ctx); err != nil {
		return err
	}
	done := make(chan struct{})
	for range s.cfg.BindWorkers {
		go func() {
			for w := range s.work {
				w(ctx)
			}
		}()
	}
	go s.housekeeping(ctx, done)
	go s.events.run(ctx)
	pendingQueue.Store(s.queue)
	defer pendingQueue.CompareAndSwap(s.queue, nil)
	go func() {
		<-ctx.Done()
		s.queue.Close()
	}()
	s.log.Info("scheduling", "scoring", s.cfg.Scoring, "bindWorkers", s.cfg.BindWorkers)
	for s.scheduleOne(ctx) {
	}
	close(s.work)
	close(done)
	return nil
}

// housekeeping retries backed-off and long-parked pods every second, and
// drops stale assumptions.
func (s *Scheduler) housekeeping(ctx context.Context, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
			s.queue.Flush()
			if s.cache.Expire() > 0 {
				s.queue.MoveAllToActive()
			}
		}
	}
}

// scheduleOne runs one scheduling cycle: the next pod is placed against
// the cache, assumed onto its node, and handed to a worker for binding.
// It returns false once the queue is closed.
func (s *Scheduler) scheduleOne(ctx context.Context) bool {
	qp, pi, ok := s.queue.Pop()
	if !ok {
		return false
	}
	start := time.Now()
	if s.cache.IsAssumedOrBound(pi.Pod.UID) {
		s.queue.Done(qp)
		return true
	}
	s.cache.Lock()
	nodes := s.cache.Nodes()
	state := newCycleState(pi, nodes, s.cache.Nominated())
	node, fitErr := s.algo.schedule(state, nodes)
	if fitErr != nil {
		var p *preemption
		if fitErr.NumNodes > 0 {
			p = s.algo.preempt(state, nodes, fitErr)
		}
		if p != nil {
			s.cache.Nominate(pi, p.node.Name)
		}
		s.cache.Unlock()
		s.queue.Unschedulable(qp)
		observeAttempt(resultUnschedulable, start)
		s.dispatch(ctx, func(ctx context.Context) { s.recordFailure(ctx, pi, fitErr, p) })
		return true
	}
	s.cache.Assume(pi, node.Name)
	s.cache.Unlock()
	name := node.Name
	s.dispatch(ctx, func(ctx context.Context) { s.bind(ctx, qp, pi, name, start) })
	return true
}

// dispatch hands a write to the workers, waiting while all are busy: the
// bound on writes in flight is what paces the cycles.
func (s *Scheduler) dispatch(ctx context.Context, w func(context.Context)) {
	select {
	case s.work <- w:
	case <-ctx.Done():
	}
}

// watch registers the event handlers and waits until each has seen the
// whole initial list, so that the first cycle sees every bound pod.
// Priority classes come first: pods' priorities are resolved from them.
func (s *Scheduler) watch(ctx context.Context) error {
	steps := []struct {
		obj     client.Object
		handler toolscache.ResourceEventHandler
	}{
		{&schedulingv1.PriorityClass{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { s.onPriorityClass(o, false) },
			UpdateFunc: func(_, o any) { s.onPriorityClass(o, false) },
			DeleteFunc: func(o any) { s.onPriorityClass(o, true) },
		}},
		{&skiffcorev1.Node{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    s.onNodeAdd,
			UpdateFunc: s.onNodeUpdate,
			DeleteFunc: s.onNodeDelete,
		}},
		{&skiffcorev1.Pod{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { s.onPod(nil, o) },
			UpdateFunc: s.onPod,
			DeleteFunc: s.onPodDelete,
		}},
	}
	for _, step := range steps {
		inf, err := s.informers.GetInformer(ctx, step.obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", step.obj, err)
		}
		reg, err := inf.AddEventHandler(step.handler)
		if err != nil {
			return fmt.Errorf("watching %T: %w", step.obj, err)
		}
		if !toolscache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
			return fmt.Errorf("watching %T: stopped before the initial list was seen", step.obj)
		}
	}
	return nil
}

func (s *Scheduler) onPriorityClass(o any, deleted bool) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	pc, ok := o.(*schedulingv1.PriorityClass)
	if !ok {
		return
	}
	if deleted {
		s.priorities.remove(pc.Name)
	} else {
		s.priorities.set(pc)
	}
}

func (s *Scheduler) onNodeAdd(o any) {
	n, ok := o.(*skiffcorev1.Node)
	if !ok {
		return
	}
	s.cache.AddOrUpdateNode(n)
	s.queue.MoveAllToActive()
}

// onNodeUpdate retries parked pods only when something a filter reads
// changed, not on every status heartbeat.
func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*skiffcorev1.Node)
	n, ok2 := newObj.(*skiffcorev1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.AddOrUpdateNode(n)
	if nodeSchedulingChanged(old, n) {
		s.queue.MoveAllToActive()
	}
}

// nodeSchedulingChanged reports a change that may let a parked pod fit.
func nodeSchedulingChanged(old, n *skiffcorev1.Node) bool {
	oc, nc := podutil.NodeAsCore(old), podutil.NodeAsCore(n)
	return !equality.Semantic.DeepEqual(old.Labels, n.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) ||
		old.Spec.Unschedulable != n.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Status.Allocatable, n.Status.Allocatable) ||
		(readinessTaint(oc) == nil) != (readinessTaint(nc) == nil)
}

func (s *Scheduler) onNodeDelete(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if n, ok := o.(*skiffcorev1.Node); ok {
		s.cache.RemoveNode(n.Name)
	}
}

// responsible reports whether this scheduler places the pod.
func responsible(p *skiffcorev1.Pod) bool {
	return p.Spec.SchedulerName == "" || p.Spec.SchedulerName == SchedulerName
}

func (s *Scheduler) podInfo(p *skiffcorev1.Pod) *PodInfo {
	priority, never := s.priorities.resolve(p)
	pi := NewPodInfo(p, priority, never)
	// Bounded: the first read of claims starts their informer, and a
	// handler must not hang on it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pi.volumeNodeAffinity = volumeNodeAffinity(ctx, s.client, p)
	return pi
}

// onPod sorts a pod into the cache (bound pods) or the queue (pending ones
// this scheduler serves). oldObj is nil for an add.
func (s *Scheduler) onPod(oldObj, newObj any) {
	p, ok := newObj.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	if p.Spec.NodeName != "" {
		s.queue.Delete(p.UID)
		if podutil.IsTerminal(p) {
			// A finished pod frees its node's resources.
			s.cache.RemovePod(p.UID)
			if old, ok := oldObj.(*skiffcorev1.Pod); ok && !podutil.IsTerminal(old) {
				s.queue.MoveAllToActive()
			}
			return
		}
		s.cache.AddOrUpdatePod(s.podInfo(p))
		return
	}
	if !responsible(p) || p.DeletionTimestamp != nil || podutil.IsTerminal(p) || len(p.Spec.SchedulingGates) > 0 {
		// Not this scheduler's, going, finished, or held back by a
		// scheduling gate until its owner lifts it.
		s.queue.Delete(p.UID)
		s.cache.RemoveNomination(p.UID)
		return
	}
	pi := s.podInfo(p)
	s.cache.UpdateNomination(pi)
	// A pod assumed by this scheduler whose binding the informer has not
	// shown yet is only refreshed, never queued again.
	s.queue.AddOrUpdate(pi, s.cache.IsAssumedOrBound(p.UID))
}

// onPodDelete forgets a pod; a bound one's node has room again.
func (s *Scheduler) onPodDelete(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	p, ok := o.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	s.queue.Delete(p.UID)
	s.cache.RemovePod(p.UID)
	if p.Spec.NodeName != "" {
		s.queue.MoveAllToActive()
	}
}
