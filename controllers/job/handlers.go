package job

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// podEvents wakes a pod's Job, after recording what the event tells the
// expectations: a creation seen, a finalizer removal seen. An orphan wakes
// the Jobs whose selector matches it, to adopt it.
type podEvents struct{ r *Reconciler }

func (h podEvents) Create(ctx context.Context, e event.CreateEvent, q queue) {
	pod, ok := e.Object.(*skiffcorev1.Pod)
	if !ok {
		return
	}
	ref := jobOf(pod)
	if ref == nil {
		if metav1.GetControllerOfNoCopy(pod) == nil {
			h.enqueueAdopters(ctx, pod, q)
		}
		return
	}
	h.r.expectations.creationObserved(ref.UID)
	h.observe(pod, ref)
	enqueue(q, pod.Namespace, ref.Name)
}

func (h podEvents) Update(ctx context.Context, e event.UpdateEvent, q queue) {
	old, okOld := e.ObjectOld.(*skiffcorev1.Pod)
	cur, okCur := e.ObjectNew.(*skiffcorev1.Pod)
	if !okOld || !okCur {
		return
	}
	if ref := jobOf(old); ref != nil && (jobOf(cur) == nil || jobOf(cur).UID != ref.UID) {
		enqueue(q, old.Namespace, ref.Name)
	}
	if ref := jobOf(cur); ref != nil {
		h.observe(cur, ref)
		enqueue(q, cur.Namespace, ref.Name)
		return
	}
	released := metav1.GetControllerOfNoCopy(old) != nil
	if metav1.GetControllerOfNoCopy(cur) == nil && (released || !equality.Semantic.DeepEqual(old.Labels, cur.Labels)) {
		// A new orphan, or one whose labels changed: a Job may adopt it.
		h.enqueueAdopters(ctx, cur, q)
	}
}

func (h podEvents) enqueueAdopters(ctx context.Context, pod *skiffcorev1.Pod, q queue) {
	for _, name := range h.r.adopters(ctx, pod.Namespace, pod.Labels) {
		enqueue(q, pod.Namespace, name)
	}
}

func (h podEvents) Delete(_ context.Context, e event.DeleteEvent, q queue) {
	if pod, ok := e.Object.(*skiffcorev1.Pod); ok {
		if ref := jobOf(pod); ref != nil {
			h.r.expectations.releaseObserved(ref.UID, pod.UID)
			enqueue(q, pod.Namespace, ref.Name)
		}
	}
}

func (h podEvents) Generic(context.Context, event.GenericEvent, queue) {}

// observe marks a pod's release as seen once the cache shows it without
// the tracking finalizer.
func (h podEvents) observe(pod *skiffcorev1.Pod, ref *metav1.OwnerReference) {
	if !hasTrackingFinalizer(pod) {
		h.r.expectations.releaseObserved(ref.UID, pod.UID)
	}
}

// jobOf returns the pod's controller reference when it is a skiff Job.
func jobOf(pod *skiffcorev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "Job" || ref.APIVersion != skiffbatchv1.GroupVersion.String() {
		return nil
	}
	return ref
}

func enqueue(q queue, namespace, name string) {
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: name}})
}

// jobDeletions forgets a deleted Job's in-memory state.
type jobDeletions struct{ r *Reconciler }

func (h jobDeletions) Create(context.Context, event.CreateEvent, queue)   {}
func (h jobDeletions) Update(context.Context, event.UpdateEvent, queue)   {}
func (h jobDeletions) Generic(context.Context, event.GenericEvent, queue) {}
func (h jobDeletions) Delete(_ context.Context, e event.DeleteEvent, _ queue) {
	h.r.expectations.forget(e.Object.GetUID())
	h.r.backoffs.forget(e.Object.GetUID())
}
