package statefulset

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/expectations"
)

// podEvents wakes StatefulSets for their pods' events and keeps the
// expectations; an orphan wakes the sets whose selector matches it, which
// may adopt it.
func (r *Reconciler) podEvents() expectations.PodEvents {
	return expectations.PodEvents{
		Owner:        skiffappsv1.GroupVersion.WithKind("StatefulSet"),
		Expectations: r.expectations,
		Adopters: expectations.SelectorAdopters(r.Client,
			func() client.ObjectList { return &skiffappsv1.StatefulSetList{} },
			func(o client.Object) *metav1.LabelSelector { return o.(*skiffappsv1.StatefulSet).Spec.Selector }),
	}
}
