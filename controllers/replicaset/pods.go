package replicaset

import (
	"maps"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// newPod is the pod a ReplicaSet creates from its template: named
// "<rs-name>-<random>" by the apiserver, carrying the template's labels,
// annotations and finalizers, and controlled by the ReplicaSet. It has no
// node unless the template names one: the scheduler places it.
func newPod(rs *skiffappsv1.ReplicaSet, controllerRef *metav1.OwnerReference) *skiffcorev1.Pod {
	t := rs.Spec.Template
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    rs.Name + "-",
			Namespace:       rs.Namespace,
			Labels:          maps.Clone(t.Labels),
			Annotations:     maps.Clone(t.Annotations),
			Finalizers:      slices.Clone(t.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*controllerRef},
		},
		Spec: *t.Spec.DeepCopy(),
	}
}
