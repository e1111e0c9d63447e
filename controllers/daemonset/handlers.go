package daemonset

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// queue is the controller's work queue, as the event handlers see it.
type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// podEvents turns pod events into DaemonSet syncs: it records what each
// event tells the expectations, then wakes the pod's controller, or, for
// an orphan, every DaemonSet that might adopt it.
type podEvents struct{ r *Reconciler }

func (h podEvents) Create(ctx context.Context, e event.CreateEvent, q queue) {
	pod, ok := e.Object.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		h.deleted(pod, q)
		return
	}
	if ref := daemonSetOf(pod); ref != nil {
		h.r.expectations.CreationObserved(ref.UID)
		enqueue(q, pod.Namespace, ref.Name)
		return
	}
	h.enqueueMatching(ctx, pod, q)
}

func (h podEvents) Update(ctx context.Context, e event.UpdateEvent, q queue) {
	old, okOld := e.ObjectOld.(*skiffcorev1.Pod)
	cur, okCur := e.ObjectNew.(*skiffcorev1.Pod)
	if !okOld || !okCur || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		// Being deleted is as good as gone: its replacement may come now.
		h.deleted(cur, q)
		return
	}
	oldRef, curRef := daemonSetOf(old), daemonSetOf(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		enqueue(q, old.Namespace, oldRef.Name)
	}
	if curRef != nil {
		enqueue(q, cur.Namespace, curRef.Name)
		return
	}
	if oldRef != nil || !equality.Semantic.DeepEqual(old.Labels, cur.Labels) {
		h.enqueueMatching(ctx, cur, q)
	}
}

func (h podEvents) Delete(_ context.Context, e event.DeleteEvent, q queue) {
	if pod, ok := e.Object.(*skiffcorev1.Pod); ok {
		h.deleted(pod, q)
	}
}

func (podEvents) Generic(context.Context, event.GenericEvent, queue) {}

// deleted records a pod's deletion for its DaemonSet and wakes it.
func (h podEvents) deleted(pod *skiffcorev1.Pod, q queue) {
	if ref := daemonSetOf(pod); ref != nil {
		h.r.expectations.DeletionObserved(ref.UID, pod.UID)
		enqueue(q, pod.Namespace, ref.Name)
	}
}

// enqueueMatching wakes the DaemonSets whose selector matches an orphan.
func (h podEvents) enqueueMatching(ctx context.Context, pod *skiffcorev1.Pod, q queue) {
	var list skiffappsv1.DaemonSetList
	if err := h.r.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		return
	}
	for i := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(list.Items[i].Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		enqueue(q, pod.Namespace, list.Items[i].Name)
	}
}

// daemonSetOf returns the pod's controller reference when a DaemonSet
// controls it.
func daemonSetOf(pod *skiffcorev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "DaemonSet" || ref.APIVersion != skiffappsv1.GroupVersion.String() {
		return nil
	}
	return ref
}

func enqueue(q queue, namespace, name string) {
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
}

// daemonSetDeletions forgets a deleted DaemonSet's expectations.
type daemonSetDeletions struct{ r *Reconciler }

func (daemonSetDeletions) Create(context.Context, event.CreateEvent, queue)   {}
func (daemonSetDeletions) Update(context.Context, event.UpdateEvent, queue)   {}
func (daemonSetDeletions) Generic(context.Context, event.GenericEvent, queue) {}
func (h daemonSetDeletions) Delete(_ context.Context, e event.DeleteEvent, _ queue) {
	h.r.expectations.Forget(e.Object.GetUID())
}

// nodeChanged passes the node events that can change where daemons run:
// a node joining or leaving, or an edit of its labels or spec (taints,
// unschedulable). Heartbeats only touch the status and are ignored.
var nodeChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*skiffcorev1.Node)
		cur, okCur := e.ObjectNew.(*skiffcorev1.Node)
		if !okOld || !okCur {
			return false
		}
		return !equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
			!equality.Semantic.DeepEqual(old.Spec, cur.Spec) ||
			(old.DeletionTimestamp == nil) != (cur.DeletionTimestamp == nil)
	},
}
