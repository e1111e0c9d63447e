package job

import (
	batchv1 "k8s.io/api/batch/v1"
)

// onlyReplaceFailed reports whether the Job's podReplacementPolicy is
// Failed: a pod being deleted is replaced only once it is gone (or
// terminal), so that no two pods of the Job run at once. Unset, it is
// Failed with a podFailurePolicy (which must see how a pod ended before a
// replacement runs) and TerminatingOrFailed otherwise, as upstream's
// defaulting.
func onlyReplaceFailed(spec *batchv1.JobSpec) bool {
	if spec.PodReplacementPolicy != nil {
		return *spec.PodReplacementPolicy == batchv1.Failed
	}
	return spec.PodFailurePolicy != nil
}
