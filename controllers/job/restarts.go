package job

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// restartsExceedBackoffLimit reports whether the container restarts of the
// Job's active pods used up its backoffLimit, as upstream's
// pastBackoffLimitOnFailure. With restartPolicy OnFailure a failing
// container is restarted in place and its pod never fails, so its restarts
// (init containers' included) are the failures the limit counts; a limit
// of 0 allows none.
func restartsExceedBackoffLimit(spec *batchv1.JobSpec, active []*skiffcorev1.Pod) bool {
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range active {
		for _, c := range p.Status.InitContainerStatuses {
			restarts += c.RestartCount
		}
		for _, c := range p.Status.ContainerStatuses {
			restarts += c.RestartCount
		}
	}
	return restarts >= max(ptr.Deref(spec.BackoffLimit, 6), 1)
}
