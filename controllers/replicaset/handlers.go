package replicaset

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// queue is the controller's work queue, as the event handlers see it.
type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// podEvents turns pod events into ReplicaSet syncs, as upstream's
// addPod/updatePod/deletePod: it records what each event tells the
// expectations, then wakes the pod's controller, or, for an orphan, every
// ReplicaSet that might adopt it.
type podEvents struct{ r *Reconciler }

func (h podEvents) Create(ctx context.Context, e event.CreateEvent, q queue) {
	pod, ok := e.Object.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already being deleted (a restart).
		h.deleted(pod, q)
		return
	}
	if ref := replicaSetOf(pod); ref != nil {
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
	labelsChanged := !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// A pod being deleted is as good as gone for its ReplicaSet: it
		// no longer counts, and its replacement may be created now.
		h.deleted(cur, q)
		if labelsChanged {
			h.deleted(old, q)
		}
		return
	}
	oldRef, curRef := replicaSetOf(old), replicaSetOf(cur)
	if oldRef != nil && (curRef == nil || oldRef.UID != curRef.UID) {
		// Released or taken over: the old owner must count again.
		enqueue(q, old.Namespace, oldRef.Name)
	}
	if curRef != nil {
		enqueue(q, cur.Namespace, curRef.Name)
		return
	}
	if labelsChanged || oldRef != nil {
		// A new orphan, or one whose labels changed: someone may adopt it.
		h.enqueueMatching(ctx, cur, q)
	}
}

func (h podEvents) Delete(_ context.Context, e event.DeleteEvent, q queue) {
	if pod, ok := e.Object.(*skiffcorev1.Pod); ok {
		h.deleted(pod, q)
	}
}

func (h podEvents) Generic(context.Context, event.GenericEvent, queue) {}

// deleted records a pod's deletion with its controller and wakes it.
func (h podEvents) deleted(pod *skiffcorev1.Pod, q queue) {
	if ref := replicaSetOf(pod); ref != nil {
		h.r.expectations.DeletionObserved(ref.UID, pod.UID)
		enqueue(q, pod.Namespace, ref.Name)
	}
}

// enqueueMatching wakes every ReplicaSet in the pod's namespace whose
// selector matches it.
func (h podEvents) enqueueMatching(ctx context.Context, pod *skiffcorev1.Pod, q queue) {
	var list skiffappsv1.ReplicaSetList
	if err := h.r.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing ReplicaSets for an orphan pod", "pod", client.ObjectKeyFromObject(pod))
		return
	}
	for i := range list.Items {
		rs := &list.Items[i]
		selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || selector.Empty() || !selector.Matches(labels.Set(pod.Labels)) {
			continue
		}
		enqueue(q, rs.Namespace, rs.Name)
	}
}

// replicaSetOf returns the pod's controller reference when its controller
// is a skiff ReplicaSet.
func replicaSetOf(pod *skiffcorev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != skiffappsv1.GroupVersion.String() {
		return nil
	}
	return ref
}

func enqueue(q queue, namespace, name string) {
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
}

// replicaSetDeletions forgets a deleted ReplicaSet's expectations.
type replicaSetDeletions struct{ r *Reconciler }

func (h replicaSetDeletions) Create(context.Context, event.CreateEvent, queue)   {}
func (h replicaSetDeletions) Update(context.Context, event.UpdateEvent, queue)   {}
func (h replicaSetDeletions) Generic(context.Context, event.GenericEvent, queue) {}
func (h replicaSetDeletions) Delete(_ context.Context, e event.DeleteEvent, _ queue) {
	h.r.expectations.Forget(e.Object.GetUID())
}
