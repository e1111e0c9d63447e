package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/index"
	"skiff.dev/skiff/internal/podutil"
)

// NodeLeaseNamespace holds the node heartbeat Leases, one per node, named
// after it.
const NodeLeaseNamespace = "kube-node-lease"

// NodeReconciler marks a silent node's conditions Unknown and keeps the
// node's taints in line with its conditions and cordon.
type NodeReconciler struct {
	client.Client
	Recorder    events.EventRecorder
	Clock       clock.PassiveClock
	GracePeriod time.Duration

	// known maps the nodes seen since the controller started to their UID,
	// so that each is announced once, and again when re-created.
	known sync.Map
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes/status,verbs=patch;update
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch;update

// Reconcile checks one node's heartbeat and taints, and comes back when the
// heartbeat would go stale: each node costs one timer, not a poll.
func (r *NodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	// 1. Load the node and its Lease.
	var node skiffcorev1.Node
	if err := r.Get(ctx, req.NamespacedName, &node); err != nil {
		if apierrors.IsNotFound(err) {
			r.known.Delete(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !node.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	r.announce(&node)
	var lease coordinationv1.Lease
	leasePtr := &lease
	if err := r.Get(ctx, types.NamespacedName{Namespace: NodeLeaseNamespace, Name: node.Name}, &lease); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		leasePtr = nil
	}

	// 2. A silent node's conditions become Unknown.
	now := r.Clock.Now()
	staleAt := lastHeartbeat(&node.Status, node.CreationTimestamp, leasePtr).Add(r.GracePeriod)
	var result ctrl.Result
	if now.Before(staleAt) {
		result.RequeueAfter = staleAt.Sub(now)
	} else if err := r.markUnknown(ctx, &node, now); err != nil {
		return ctrl.Result{}, err
	}

	// 3. Taints follow the conditions and the cordon.
	if err := r.syncTaints(ctx, &node, now); err != nil {
		return ctrl.Result{}, err
	}

	// 4. The pods of a silent node are not ready: its agent cannot say so
	// itself, and Services must stop sending them traffic.
	if c := nodeCondition(&node.Status, corev1.NodeReady); c != nil && c.Status == corev1.ConditionUnknown {
		if err := r.markPodsNotReady(ctx, node.Name); err != nil {
			return ctrl.Result{}, err
		}
	}
	log.V(1).Info("node checked", "staleAt", staleAt, "requeueAfter", result.RequeueAfter)
	return result, nil
}

// announce records RegisteredNode the first time the controller sees a
// node, as upstream's node lifecycle controller does on each start.
func (r *NodeReconciler) announce(node *skiffcorev1.Node) {
	if prev, seen := r.known.Swap(node.Name, node.UID); seen && prev == node.UID {
		return
	}
	r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, "RegisteredNode", "RegisterNode",
		"Node %s event: Registered Node %s in Controller", node.Name, node.Name)
}

// markUnknown writes the Unknown conditions of a node whose agent went
// silent, once, with an Event as upstream's "NodeNotReady".
func (r *NodeReconciler) markUnknown(ctx context.Context, node *skiffcorev1.Node, now time.Time) error {
	base := node.DeepCopy()
	if !markUnknown(&node.Status, now) {
		return nil
	}
	// The lock makes a racing write by the node agent (a recovery) win:
	// the retry reads it and finds the node alive.
	if err := r.Status().Patch(ctx, node, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("marking node %s Ready=Unknown: %w", node.Name, err)
	}
	logf.FromContext(ctx).Info("node stopped posting status: marked Ready=Unknown", "node", node.Name)
	r.Recorder.Eventf(node, nil, corev1.EventTypeNormal, "NodeNotReady", "MarkNodeUnknown",
		"Node %s status is now: NodeNotReady", node.Name)
	return nil
}

// markPodsNotReady sets Ready=False on the node's ready pods, as upstream's
// MarkPodsNotReady does, with a NodeNotReady Event on each.
func (r *NodeReconciler) markPodsNotReady(ctx context.Context, node string) error {
	var pods skiffcorev1.PodList
	if err := r.List(ctx, &pods, index.OnNode(node)); err != nil {
		return err
	}
	var errs []error
	for i := range pods.Items {
		pod := &pods.Items[i]
		if podutil.IsTerminal(pod) || !podutil.IsReady(pod) {
			continue
		}
		p := pod.DeepCopy()
		podutil.SetCondition(&p.Status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "NodeNotReady", Message: "the pod's node stopped posting status"})
		if err := r.Status().Patch(ctx, p, client.MergeFromWithOptions(pod, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("marking pod %s/%s not ready: %w", pod.Namespace, pod.Name, err))
			continue
		}
		r.Recorder.Eventf(p, nil, corev1.EventTypeWarning, "NodeNotReady", "MarkPodNotReady", "Node is not ready")
	}
	return errors.Join(errs...)
}

// syncTaints writes the node's taints if its conditions or cordon call for
// other ones. The patch carries every taint, the others unchanged, under a
// resourceVersion precondition: a concurrent taint edit makes it fail and
// retry rather than be lost.
func (r *NodeReconciler) syncTaints(ctx context.Context, node *skiffcorev1.Node, now time.Time) error {
	taints, changed := reconcileTaints(node.Spec.Taints, wantedTaints(&node.Spec, &node.Status), now)
	if !changed {
		return nil
	}
	base := node.DeepCopy()
	node.Spec.Taints = taints
	if err := r.Patch(ctx, node, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating the taints of node %s: %w", node.Name, err)
	}
	logf.FromContext(ctx).Info("node taints updated", "node", node.Name, "taints", taints)
	return nil
}

// SetupWithManager watches Nodes and their Leases.
func (r *NodeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodelifecycle").
		For(&skiffcorev1.Node{}, builder.WithPredicates(nodeChanged())).
		// A renewed Lease only matters to a node marked Unknown; a node that
		// is alive already has its timer. Mapping every renewal is still
		// cheap (two cache reads), and keeps recovery immediate.
		Watches(&coordinationv1.Lease{}, handler.EnqueueRequestsFromMapFunc(leaseToNode),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetNamespace() == NodeLeaseNamespace
			}))).
		Complete(r)
}

// leaseToNode maps a node Lease to its node.
func leaseToNode(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: o.GetName()}}}
}

// nodeChanged passes node events that can change the verdict: creation,
// and updates of conditions, taints or the cordon. The agent's heartbeat
// updates pass too (they move lastHeartbeatTime), which reschedules the
// node's timer.
func nodeChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*skiffcorev1.Node), e.ObjectNew.(*skiffcorev1.Node)
			return o.Spec.Unschedulable != n.Spec.Unschedulable ||
				!equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) ||
				!equality.Semantic.DeepEqual(o.Status.Conditions, n.Status.Conditions)
		},
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
}
