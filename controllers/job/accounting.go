package job

import (
	"slices"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// Labels, annotations and the finalizer a Job puts on its pods, as upstream.
const (
	labelControllerUID       = "batch.kubernetes.io/controller-uid"
	labelJobName             = "batch.kubernetes.io/job-name"
	legacyLabelControllerUID = "controller-uid"
	legacyLabelJobName       = "job-name"
	labelCompletionIndex     = "batch.kubernetes.io/job-completion-index"
	envCompletionIndex       = "JOB_COMPLETION_INDEX"
	// annotationIndexFailures is how often the pod's index failed before
	// it, for backoffLimitPerIndex.
	annotationIndexFailures = "batch.kubernetes.io/job-index-failure-count"

	// trackingFinalizer holds a Job's pod until its result is counted in
	// the Job's status: without it, a finished pod deleted (by the pod GC,
	// a user) before the controller saw it would be lost, and one seen
	// twice could be counted twice.
	trackingFinalizer = "batch.kubernetes.io/job-tracking"
)

// hasTrackingFinalizer reports whether the pod's result is still to be
// counted (or, for a pod that never finished, released).
func hasTrackingFinalizer(p *skiffcorev1.Pod) bool {
	return controllerutil.ContainsFinalizer(p, trackingFinalizer)
}

// completionIndex returns the pod's completion index from its annotation,
// or -1 when it has none or it is not in [0, completions).
func completionIndex(p *skiffcorev1.Pod, completions int) int {
	v, ok := p.Annotations[labelCompletionIndex]
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || i >= completions {
		return -1
	}
	return i
}

// indexFailures returns how often the pod's index had failed before the
// pod was created.
func indexFailures(p *skiffcorev1.Pod) int {
	n, err := strconv.Atoi(p.Annotations[annotationIndexFailures])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// recordFinished is the first step of upstream's two-step accounting. It
// adds every finished pod that still carries the tracking finalizer to
// status.uncountedTerminatedPods (and, in Indexed mode, a succeeded pod's
// index to completedIndexes), and returns the pods whose finalizer may now
// be removed. The status must be written before the finalizers are
// removed: from then on the pod's result survives in the Job alone.
//
// A pod counts as succeeded or failed by its phase. Once the Job is
// failing (FailureTarget), pods it deletes count as failed, as upstream;
// pods stopped after the success criteria are met are released uncounted. A pod deleted before it finished is released uncounted: the
// Job replaces it. Pods in pending (finalizer removals in flight that the
// cache has not shown yet) are skipped, so that no pod counts twice.
//
// A failed pod is judged by the podFailurePolicy: Ignore releases it
// uncounted (it is replaced without using up the backoffLimit), FailJob
// counts it and returns failJob, the message of the Job's failure.
//
// With backoffLimitPerIndex (perIndexLimit), an index whose pods failed
// more often than the limit, or whose pod a FailIndex rule matched, joins
// failedIndexes and is not run again.
func recordFinished(status *batchv1.JobStatus, pods []*skiffcorev1.Pod, pending map[types.UID]bool, failing bool, indexed bool, completions int, policy *batchv1.PodFailurePolicy, perIndexLimit *int32) (release []*skiffcorev1.Pod, failJob string) {
	if status.UncountedTerminatedPods == nil {
		status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	u := status.UncountedTerminatedPods
	completed := parseIndexes(status.CompletedIndexes, completions)
	failedIdx := parseIndexes(ptr.Deref(status.FailedIndexes, ""), completions)
	for _, p := range pods {
		if !hasTrackingFinalizer(p) || pending[p.UID] {
			continue
		}
		if !failing && p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			continue // still running
		}
		release = append(release, p)
		if slices.Contains(u.Succeeded, p.UID) || slices.Contains(u.Failed, p.UID) {
			continue // recorded by an earlier sync whose removal failed
		}
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			u.Succeeded = append(u.Succeeded, p.UID)
			if indexed {
				if i := completionIndex(p, completions); i >= 0 {
					completed[i] = true
				}
			}
		case p.Status.Phase == corev1.PodFailed:
			action, msg := judgeFailure(policy, p)
			if action == batchv1.PodFailurePolicyActionIgnore {
				continue
			}
			if action == batchv1.PodFailurePolicyActionFailJob && failJob == "" {
				failJob = msg
			}
			u.Failed = append(u.Failed, p.UID)
			if i := completionIndex(p, completions); indexed && perIndexLimit != nil && i >= 0 {
				if action == batchv1.PodFailurePolicyActionFailIndex || indexFailures(p)+1 > int(*perIndexLimit) {
					failedIdx[i] = true
				}
			}
		case failing:
			u.Failed = append(u.Failed, p.UID)
		}
	}
	if indexed {
		status.CompletedIndexes = completed.String()
	}
	if indexed && perIndexLimit != nil {
		status.FailedIndexes = ptr.To(failedIdx.String())
	}
	return release, failJob
}

// countReleased is the second step: every uncounted pod whose finalizer is
// gone (released now, or earlier by a sync that stopped before this step)
// moves from uncountedTerminatedPods to succeeded or failed. stillHeld
// reports the pods that still carry the finalizer.
func countReleased(status *batchv1.JobStatus, stillHeld func(types.UID) bool) (newFailed int) {
	u := status.UncountedTerminatedPods
	if u == nil {
		return 0
	}
	keep := func(uids []types.UID, counter *int32) []types.UID {
		var rest []types.UID
		for _, uid := range uids {
			if stillHeld(uid) {
				rest = append(rest, uid)
				continue
			}
			*counter++
		}
		return rest
	}
	before := status.Failed
	u.Succeeded = keep(u.Succeeded, &status.Succeeded)
	u.Failed = keep(u.Failed, &status.Failed)
	return int(status.Failed - before)
}
