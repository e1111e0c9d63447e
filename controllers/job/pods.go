package job

import (
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// newPod is the pod a Job creates from its template: controlled by the
// Job, labelled with its UID and name (current and legacy keys, as
// upstream), held by the tracking finalizer, and in Indexed mode (index >=
// 0) told its completion index by annotation, label and the
// JOB_COMPLETION_INDEX environment variable of every container.
func newPod(job *skiffbatchv1.Job, ref *metav1.OwnerReference, index int) *skiffcorev1.Pod {
	t := job.Spec.Template
	labels := maps.Clone(t.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelControllerUID] = string(job.UID)
	labels[labelJobName] = job.Name
	labels[legacyLabelControllerUID] = string(job.UID)
	labels[legacyLabelJobName] = job.Name
	annotations := maps.Clone(t.Annotations)
	generateName := job.Name + "-"
	spec := t.Spec.DeepCopy()
	if index >= 0 {
		idx := strconv.Itoa(index)
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[labelCompletionIndex] = idx
		labels[labelCompletionIndex] = idx
		generateName = job.Name + "-" + idx + "-"
		if spec.Hostname == "" {
			spec.Hostname = job.Name + "-" + idx
		}
		env := corev1.EnvVar{Name: envCompletionIndex, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + labelCompletionIndex + "']"},
		}}
		for i := range spec.InitContainers {
			spec.InitContainers[i].Env = append(spec.InitContainers[i].Env, env)
		}
		for i := range spec.Containers {
			spec.Containers[i].Env = append(spec.Containers[i].Env, env)
		}
	}
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    generateName,
			Namespace:       job.Namespace,
			Labels:          labels,
			Annotations:     annotations,
			Finalizers:      append(slices.Clone(t.Finalizers), trackingFinalizer),
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Spec: *spec,
	}
}
