package expectations

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// PodEvents turns pod events into syncs of the pods' owners of one kind,
// as upstream's addPod/updatePod/deletePod: it records what each event
// tells the expectations, then wakes the pod's controller, or, for an
// orphan, every owner that might adopt it.
type PodEvents struct {
	// Owner is the kind whose pods these are.
	Owner schema.GroupVersionKind
	// Expectations are the owner controller's.
	Expectations *Expectations
	// Adopters names the owners in a namespace whose selector matches
	// these labels.
	Adopters func(ctx context.Context, namespace string, labels map[string]string) []string
}

var _ handler.EventHandler = PodEvents{}

func (h PodEvents) Create(ctx context.Context, e event.CreateEvent, q queue) {
	pod, ok := e.Object.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already being deleted (a restart).
		h.deleted(pod, q)
		return
	}
	if ref := h.ownerOf(pod); ref != nil {
		h.Expectations.CreationObserved(ref.UID)
		enqueue(q, pod.Namespace, ref.Name)
		return
	}
	h.enqueueAdopters(ctx, pod, q)
}

func (h PodEvents) Update(ctx context.Context, e event.UpdateEvent, q queue) {
	old, okOld := e.ObjectOld.(*skiffcorev1.Pod)
	cur, okCur := e.ObjectNew.(*skiffcorev1.Pod)
	if !okOld || !okCur || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	labelsChanged := !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// A pod being deleted is as good as gone for its owner: it no
		// longer counts, and its replacement may be created now.
		h.deleted(cur, q)
		if labelsChanged {
			h.deleted(old, q)
		}
		return
	}
	oldRef, curRef := h.ownerOf(old), h.ownerOf(cur)
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
		h.enqueueAdopters(ctx, cur, q)
	}
}

func (h PodEvents) Delete(_ context.Context, e event.DeleteEvent, q queue) {
	if pod, ok := e.Object.(*skiffcorev1.Pod); ok {
		h.deleted(pod, q)
	}
}

func (PodEvents) Generic(context.Context, event.GenericEvent, queue) {}

// deleted records a pod's deletion with its owner and wakes it.
func (h PodEvents) deleted(pod *skiffcorev1.Pod, q queue) {
	if ref := h.ownerOf(pod); ref != nil {
		h.Expectations.DeletionObserved(ref.UID, pod.UID)
		enqueue(q, pod.Namespace, ref.Name)
	}
}

func (h PodEvents) enqueueAdopters(ctx context.Context, pod *skiffcorev1.Pod, q queue) {
	for _, name := range h.Adopters(ctx, pod.Namespace, pod.Labels) {
		enqueue(q, pod.Namespace, name)
	}
}

// ownerOf returns the pod's controller reference when it is of the Owner kind.
func (h PodEvents) ownerOf(pod *skiffcorev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != h.Owner.Kind || ref.APIVersion != h.Owner.GroupVersion().String() {
		return nil
	}
	return ref
}

func enqueue(q queue, namespace, name string) {
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
}

// OwnerDeletions forgets a deleted owner's expectations.
type OwnerDeletions struct{ Expectations *Expectations }

var _ handler.EventHandler = OwnerDeletions{}

func (OwnerDeletions) Create(context.Context, event.CreateEvent, queue)   {}
func (OwnerDeletions) Update(context.Context, event.UpdateEvent, queue)   {}
func (OwnerDeletions) Generic(context.Context, event.GenericEvent, queue) {}
func (h OwnerDeletions) Delete(_ context.Context, e event.DeleteEvent, _ queue) {
	h.Expectations.Forget(e.Object.GetUID())
}
