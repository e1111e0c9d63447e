package daemonset

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/expectations"
)

// podEvents wakes DaemonSets for their pods' events and keeps the
// expectations, as upstream's addPod/updatePod/deletePod.
func (r *Reconciler) podEvents() expectations.PodEvents {
	return expectations.PodEvents{
		Owner:        skiffappsv1.GroupVersion.WithKind("DaemonSet"),
		Expectations: r.expectations,
		Adopters:     r.adopters,
	}
}

// adopters names the DaemonSets in namespace whose selector matches an
// orphan pod's labels.
func (r *Reconciler) adopters(ctx context.Context, namespace string, podLabels map[string]string) []string {
	var list skiffappsv1.DaemonSetList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing DaemonSets for an orphan pod", "namespace", namespace)
		return nil
	}
	var names []string
	for i := range list.Items {
		selector, err := metav1.LabelSelectorAsSelector(list.Items[i].Spec.Selector)
		if err == nil && !selector.Empty() && selector.Matches(labels.Set(podLabels)) {
			names = append(names, list.Items[i].Name)
		}
	}
	return names
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
