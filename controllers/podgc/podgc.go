// Package podgc removes pods that no node will ever finish: pods bound to a
// node that no longer exists, terminating pods whose node is gone or out of
// service, and terminating pods that were never scheduled. It also keeps
// finished pods below a threshold, oldest first.
//
// skiff's bound pods carry the termination finalizer, which only their node
// agent removes once the pod has stopped. When the node is gone (deleted,
// or shut down and marked out-of-service) no agent will, so pod GC removes
// the finalizer itself, as upstream's pod GC force-deletes such pods.
package podgc

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/index"
	"skiff.dev/skiff/internal/podutil"
)

// options are the settings tests shorten; Setup uses upstream's.
type options struct {
	// quarantine is how long a node must have been missing before its pods
	// are removed, so that a pod bound just before its node registers (or
	// seen before the node is in the cache) is not collected (upstream: 40s).
	quarantine time.Duration
	// terminatedThreshold is how many finished pods may exist before the
	// oldest are deleted (upstream: 12,500); 0 keeps them all.
	terminatedThreshold int
	// gcPeriod is how often the finished pods are counted (upstream: 20s).
	gcPeriod time.Duration
}

func defaultOptions() options {
	return options{quarantine: 40 * time.Second, terminatedThreshold: 12500, gcPeriod: 20 * time.Second}
}

// Setup registers the pod garbage collector with the manager.
func Setup(mgr ctrl.Manager) error { return setup(mgr, defaultOptions(), clock.RealClock{}) }

func setup(mgr ctrl.Manager, opts options, clk clock.PassiveClock) error {
	if err := index.PodsByNodeName(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	r := &Reconciler{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Clock:        clk,
		Quarantine:   opts.quarantine,
		missingSince: map[types.NamespacedName]sighting{},
	}
	if opts.terminatedThreshold > 0 {
		c := &terminatedCollector{client: mgr.GetClient(), threshold: opts.terminatedThreshold, period: opts.gcPeriod}
		if err := mgr.Add(c); err != nil {
			return err
		}
	}
	return r.SetupWithManager(mgr)
}

// Reconciler decides, pod by pod, whether a node will ever finish it.
type Reconciler struct {
	client.Client
	// APIReader reads past the cache, to confirm a node is really gone
	// before its pods are removed.
	APIReader  client.Reader
	Clock      clock.PassiveClock
	Quarantine time.Duration

	mu sync.Mutex
	// missingSince is when this controller first found each pod's node
	// missing. It is per pod, not per node name, so that a node that comes
	// back and goes again starts a new quarantine.
	missingSince map[types.NamespacedName]sighting
}

// sighting is when a pod, by UID, was first seen bound to a missing node.
type sighting struct {
	uid   types.UID
	since time.Time
}

// Why a pod is removed, in the DisruptionTarget condition as upstream.
const (
	reasonDeletionByPodGC   = "DeletionByPodGC"
	messageNodeGone         = "PodGC: node no longer exists"
	messageNodeOutOfService = "PodGC: node is out-of-service"
)

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch;update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch

// Reconcile removes the pod if no node will ever finish it.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pod skiffcorev1.Pod
	if err := r.Get(ctx, req.NamespacedName, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	// 1. An unscheduled pod has no agent to release it: a terminating one
	// that still carries the finalizer loses it at once.
	if pod.Spec.NodeName == "" {
		if podutil.IsTerminating(&pod) {
			return ctrl.Result{}, r.releaseFinalizer(ctx, pod.DeepCopy())
		}
		return ctrl.Result{}, nil
	}

	// 2. A pod on an existing node is that node's agent's business, unless
	// the node was shut down and marked out-of-service.
	var node skiffcorev1.Node
	err := r.Get(ctx, types.NamespacedName{Name: pod.Spec.NodeName}, &node)
	if err == nil {
		r.forget(req.NamespacedName)
		if podutil.IsTerminating(&pod) && isOutOfService(&node) {
			return ctrl.Result{}, r.forceRemove(ctx, &pod, messageNodeOutOfService)
		}
		return ctrl.Result{}, nil
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}

	// 3. The node is missing: wait out the quarantine, then confirm with the
	// apiserver itself before removing the pod.
	if wait := r.quarantineLeft(&pod); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Name: pod.Spec.NodeName}, &node); err == nil {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if err := r.forceRemove(ctx, &pod, messageNodeGone); err != nil {
		return ctrl.Result{}, err
	}
	r.forget(req.NamespacedName)
	return ctrl.Result{}, nil
}

// quarantineLeft notes when the pod was first seen on a missing node and
// returns how long it must still wait.
func (r *Reconciler) quarantineLeft(pod *skiffcorev1.Pod) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := client.ObjectKeyFromObject(pod)
	now := r.Clock.Now()
	s, ok := r.missingSince[key]
	if !ok || s.uid != pod.UID {
		s = sighting{uid: pod.UID, since: now}
		r.missingSince[key] = s
	}
	return s.since.Add(r.Quarantine).Sub(now)
}

// forget drops a pod's sighting once its node is seen or the pod is gone.
func (r *Reconciler) forget(pod types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.missingSince, pod)
}

// forceRemove does for the pod what its node agent never will: a pod still
// meant to run is marked Failed with a DisruptionTarget condition (so its
// owner knows why), its termination finalizer is removed, and it is deleted
// if it was not already being deleted.
func (r *Reconciler) forceRemove(ctx context.Context, pod *skiffcorev1.Pod, why string) error {
	pod = pod.DeepCopy()
	if !podutil.IsTerminal(pod) {
		base := pod.DeepCopy()
		pod.Status.Phase = corev1.PodFailed
		podutil.SetCondition(&pod.Status, corev1.PodCondition{
			Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
			Reason: reasonDeletionByPodGC, Message: why,
		})
		if err := r.Status().Patch(ctx, pod, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	logf.FromContext(ctx).Info("removing a pod no node will finish", "pod", client.ObjectKeyFromObject(pod), "node", pod.Spec.NodeName, "why", why)
	if err := r.releaseFinalizer(ctx, pod); err != nil {
		return err
	}
	if podutil.IsTerminating(pod) {
		return nil
	}
	return client.IgnoreNotFound(r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}))
}

// releaseFinalizer removes the termination finalizer, leaving any other.
// The resourceVersion precondition keeps a finalizer someone adds
// meanwhile. pod is updated to what the apiserver returns.
func (r *Reconciler) releaseFinalizer(ctx context.Context, pod *skiffcorev1.Pod) error {
	if !controllerutil.ContainsFinalizer(pod, skiffcorev1.PodTerminationFinalizer) {
		return nil
	}
	base := pod.DeepCopy()
	controllerutil.RemoveFinalizer(pod, skiffcorev1.PodTerminationFinalizer)
	err := r.Patch(ctx, pod, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	return client.IgnoreNotFound(err)
}

// isOutOfService reports whether an admin marked the node as shut down for
// good: not Ready and tainted out-of-service:NoExecute, as upstream's
// non-graceful node shutdown requires.
func isOutOfService(node *skiffcorev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			return false
		}
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService && t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// SetupWithManager watches Pods whose binding, deletion or finalizers
// change, and Nodes that vanish or go out of service.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("podgc").
		For(&skiffcorev1.Pod{}, builder.WithPredicates(predicate.Funcs{
			// Status updates, the bulk of pod events, change nothing here.
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*skiffcorev1.Pod), e.ObjectNew.(*skiffcorev1.Pod)
				return o.Spec.NodeName != n.Spec.NodeName ||
					o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
					len(o.Finalizers) != len(n.Finalizers)
			},
			// A deletion is passed on only so that the pod's sighting, if
			// any, is forgotten.
		})).
		Watches(&skiffcorev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.podsOnNode),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(e event.UpdateEvent) bool {
					return isOutOfService(e.ObjectOld.(*skiffcorev1.Node)) != isOutOfService(e.ObjectNew.(*skiffcorev1.Node))
				},
			})).
		Complete(r)
}

// podsOnNode maps a node to the pods bound to it.
func (r *Reconciler) podsOnNode(ctx context.Context, o client.Object) []reconcile.Request {
	var pods skiffcorev1.PodList
	if err := r.List(ctx, &pods, index.OnNode(o.GetName())); err != nil {
		logf.FromContext(ctx).Error(err, "listing the pods of a node", "node", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pods.Items))
	for i := range pods.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
	}
	return reqs
}
