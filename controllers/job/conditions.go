package job

import (
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition reasons and messages, as upstream writes them.
const (
	reasonBackoffLimitExceeded     = "BackoffLimitExceeded"
	reasonDeadlineExceeded         = "DeadlineExceeded"
	reasonCompletionsReached       = "CompletionsReached"
	reasonFailedIndexes            = "FailedIndexes"
	reasonMaxFailedIndexesExceeded = "MaxFailedIndexesExceeded"
	reasonSuspended                = "JobSuspended"
	reasonResumed                  = "JobResumed"
)

// findCondition returns the condition of type t when it is True.
func findCondition(status *batchv1.JobStatus, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range status.Conditions {
		if c := &status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// isFinished reports whether the Job reached a terminal condition.
func isFinished(status *batchv1.JobStatus) bool {
	return findCondition(status, batchv1.JobComplete) != nil || findCondition(status, batchv1.JobFailed) != nil
}

// finishingCondition returns the interim condition (FailureTarget or
// SuccessCriteriaMet) that decided the Job's outcome, or nil.
func finishingCondition(status *batchv1.JobStatus) *batchv1.JobCondition {
	if c := findCondition(status, batchv1.JobFailureTarget); c != nil {
		return c
	}
	return findCondition(status, batchv1.JobSuccessCriteriaMet)
}

// setCondition adds or updates the condition of type t; the transition
// time moves only when the status changes. It reports whether anything
// changed.
func setCondition(status *batchv1.JobStatus, t batchv1.JobConditionType, s corev1.ConditionStatus, reason, message string, now metav1.Time) bool {
	for i := range status.Conditions {
		c := &status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status == s && c.Reason == reason && c.Message == message {
			return false
		}
		if c.Status != s {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = s, reason, message, now
		return true
	}
	status.Conditions = append(status.Conditions, batchv1.JobCondition{
		Type: t, Status: s, Reason: reason, Message: message, LastProbeTime: now, LastTransitionTime: now,
	})
	return true
}

// moveConditionFirst moves the condition of type t to the front of the
// list, keeping the order of the others.
func moveConditionFirst(status *batchv1.JobStatus, t batchv1.JobConditionType) {
	i := slices.IndexFunc(status.Conditions, func(c batchv1.JobCondition) bool { return c.Type == t })
	if i <= 0 {
		return
	}
	c := status.Conditions[i]
	copy(status.Conditions[1:i+1], status.Conditions[:i])
	status.Conditions[0] = c
}
