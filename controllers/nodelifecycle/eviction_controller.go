package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// Eviction's mark on a pod, as upstream's taint eviction controller writes it.
const (
	reasonDeletionByTaintManager  = "DeletionByTaintManager"
	messageDeletionByTaintManager = "Taint manager: deleting due to NoExecute taint"
)

// EvictionReconciler evicts the pods of a node with NoExecute taints once
// their tolerations run out. It works per node: one pass lists the node's
// pods through the field index and comes back at the next deadline.
type EvictionReconciler struct {
	client.Client
	Recorder                 events.EventRecorder
	Clock                    clock.PassiveClock
	DefaultTolerationSeconds int64
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=patch;update

// Reconcile evicts the node's pods whose time is up.
func (r *EvictionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the node; only its NoExecute taints matter. A deleted node's
	// pods are pod GC's business.
	var node skiffcorev1.Node
	if err := r.Get(ctx, req.NamespacedName, &node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	taints := noExecuteTaints(node.Spec.Taints)
	if len(taints) == 0 {
		return ctrl.Result{}, nil
	}

	// 2. List the pods bound to it.
	var pods skiffcorev1.PodList
	if err := r.List(ctx, &pods, index.OnNode(node.Name)); err != nil {
		return ctrl.Result{}, err
	}

	// 3. Evict those whose time is up; remember the next deadline.
	now := r.Clock.Now()
	var next time.Time
	var errs []error
	for i := range pods.Items {
		pod := &pods.Items[i]
		// A pod that is already going, or done, is left alone.
		if !podutil.IsActive(pod) {
			continue
		}
		d := decideEviction(pod.Spec.Tolerations, taints, r.DefaultTolerationSeconds)
		switch {
		case !d.evict:
			continue
		case d.at.After(now):
			if next.IsZero() || d.at.Before(next) {
				next = d.at
			}
		default:
			if err := r.evict(ctx, pod); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return ctrl.Result{}, errors.Join(errs...)
	}

	// 4. Come back at the next deadline.
	if next.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: next.Sub(now)}, nil
}

// evict marks the pod with a DisruptionTarget condition, so that its owner
// and the user can tell why it went, then deletes it.
func (r *EvictionReconciler) evict(ctx context.Context, pod *skiffcorev1.Pod) error {
	p := pod.DeepCopy()
	marked := podutil.SetCondition(&p.Status, corev1.PodCondition{
		Type:    corev1.DisruptionTarget,
		Status:  corev1.ConditionTrue,
		Reason:  reasonDeletionByTaintManager,
		Message: messageDeletionByTaintManager,
	})
	if marked {
		// The lock keeps the node agent's concurrent status write; the retry
		// re-applies the condition on top of it.
		if err := r.Status().Patch(ctx, p, client.MergeFromWithOptions(pod, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("marking pod %s/%s for eviction: %w", pod.Namespace, pod.Name, err)
		}
	}
	if err := r.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	logf.FromContext(ctx).Info("evicted a pod from a tainted node", "pod", client.ObjectKeyFromObject(p), "node", p.Spec.NodeName)
	r.Recorder.Eventf(p, nil, corev1.EventTypeNormal, "TaintManagerEviction", "Delete",
		"Marking for deletion Pod %s/%s", p.Namespace, p.Name)
	return nil
}

// noExecuteTaints are the taints that evict.
func noExecuteTaints(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

// SetupWithManager watches Nodes for taint changes and Pods for bindings.
func (r *EvictionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("taint-eviction").
		For(&skiffcorev1.Node{}, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*skiffcorev1.Node), e.ObjectNew.(*skiffcorev1.Node)
				return !equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints)
			},
			DeleteFunc: func(event.DeleteEvent) bool { return false },
		})).
		// A pod newly bound to a tainted node, or whose tolerations changed,
		// needs its node looked at again; status updates do not.
		Watches(&skiffcorev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToNode),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(e event.CreateEvent) bool { return e.Object.(*skiffcorev1.Pod).Spec.NodeName != "" },
				UpdateFunc: func(e event.UpdateEvent) bool {
					o, n := e.ObjectOld.(*skiffcorev1.Pod), e.ObjectNew.(*skiffcorev1.Pod)
					return n.Spec.NodeName != "" && (o.Spec.NodeName != n.Spec.NodeName ||
						!equality.Semantic.DeepEqual(o.Spec.Tolerations, n.Spec.Tolerations))
				},
				DeleteFunc:  func(event.DeleteEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Complete(r)
}

// podToNode maps a pod to the node it is bound to.
func podToNode(_ context.Context, o client.Object) []reconcile.Request {
	name := o.(*skiffcorev1.Pod).Spec.NodeName
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}
