package endpointslice

import (
	"context"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// podHandler wakes the Services that select a pod. An update wakes those
// that selected its old labels too, so that a relabelled pod leaves the
// slices of a Service that no longer selects it.
func (r *Reconciler) podHandler() handler.EventHandler {
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) {
			r.enqueueFor(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			r.enqueueFor(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) {
			r.enqueueFor(ctx, q, e.Object)
		},
	}
}

func (r *Reconciler) enqueueFor(ctx context.Context, q queue, pods ...client.Object) {
	seen := map[string]bool{}
	for _, pod := range pods {
		for _, name := range r.servicesSelecting(ctx, pod.GetNamespace(), pod.GetLabels()) {
			if !seen[name] {
				seen[name] = true
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: name}})
			}
		}
	}
}
