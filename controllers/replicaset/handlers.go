package replicaset

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/expectations"
)

// podEvents wakes ReplicaSets for their pods' events and keeps the
// expectations, as upstream's addPod/updatePod/deletePod.
func (r *Reconciler) podEvents() expectations.PodEvents {
	return expectations.PodEvents{
		Owner:        skiffappsv1.GroupVersion.WithKind("ReplicaSet"),
		Expectations: r.expectations,
		Adopters:     r.adopters,
	}
}

// adopters names the ReplicaSets in namespace whose selector matches an
// orphan pod's labels.
func (r *Reconciler) adopters(ctx context.Context, namespace string, podLabels map[string]string) []string {
	var list skiffappsv1.ReplicaSetList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing ReplicaSets for an orphan pod", "namespace", namespace)
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
