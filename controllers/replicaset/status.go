package replicaset

import (
	"errors"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// Reasons of the ReplicaFailure condition, as upstream.
const (
	reasonFailedCreate = "FailedCreate"
	reasonFailedDelete = "FailedDelete"
)

// replicaFailure is a failed creation or deletion of pods; its reason goes
// into the ReplicaFailure condition.
type replicaFailure struct {
	reason string
	err    error
}

func (f *replicaFailure) Error() string { return f.err.Error() }
func (f *replicaFailure) Unwrap() error { return f.err }

// calculateStatus derives the ReplicaSet's status from its pods: owned are
// its active pods, terminating the ones it owns that are being deleted.
// manageErr is the outcome of this sync's scaling: a failure sets the
// ReplicaFailure condition, a sync without one clears it.
func calculateStatus(rs *skiffappsv1.ReplicaSet, owned []*skiffcorev1.Pod, terminating int, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	status := *rs.Status.DeepCopy()
	template := labels.SelectorFromSet(rs.Spec.Template.Labels)
	var fullyLabeled, ready, available int32
	for _, p := range owned {
		if template.Matches(labels.Set(p.Labels)) {
			fullyLabeled++
		}
		if podutil.IsReady(p) {
			ready++
			if podutil.IsAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	status.Replicas = int32(len(owned))
	status.FullyLabeledReplicas = fullyLabeled
	status.ReadyReplicas = ready
	status.AvailableReplicas = available
	status.TerminatingReplicas = new(int32(terminating))
	status.ObservedGeneration = rs.Generation

	var failure *replicaFailure
	switch {
	case errors.As(manageErr, &failure):
		setCondition(&status, appsv1.ReplicaSetCondition{
			Type:    appsv1.ReplicaSetReplicaFailure,
			Status:  corev1.ConditionTrue,
			Reason:  failure.reason,
			Message: failure.err.Error(),
		}, now)
	case manageErr == nil:
		removeCondition(&status, appsv1.ReplicaSetReplicaFailure)
	}
	return status
}

// nextAvailable returns how long until the first ready pod that is not yet
// available becomes so, and false when none is waiting: no pod event marks
// that moment, so the ReplicaSet must requeue itself for it.
func nextAvailable(owned []*skiffcorev1.Pod, minReadySeconds int32, now time.Time) (time.Duration, bool) {
	if minReadySeconds <= 0 {
		return 0, false
	}
	var next time.Duration
	found := false
	for _, p := range owned {
		if !podutil.IsReady(p) || podutil.IsAvailable(p, minReadySeconds, now) {
			continue
		}
		// podutil.IsAvailable wants the delay strictly passed; a
		// millisecond more is the first moment it holds.
		at := readySince(p).Add(time.Duration(minReadySeconds)*time.Second + time.Millisecond)
		wait := max(at.Sub(now), time.Millisecond)
		if !found || wait < next {
			next, found = wait, true
		}
	}
	return next, found
}

// setCondition adds or updates a condition; its transition time moves only
// when its status does.
func setCondition(status *appsv1.ReplicaSetStatus, c appsv1.ReplicaSetCondition, now time.Time) {
	for i := range status.Conditions {
		old := &status.Conditions[i]
		if old.Type != c.Type {
			continue
		}
		c.LastTransitionTime = old.LastTransitionTime
		if old.Status != c.Status {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		*old = c
		return
	}
	c.LastTransitionTime = metav1.NewTime(now)
	status.Conditions = append(status.Conditions, c)
}

// removeCondition drops the condition of type t, if any.
func removeCondition(status *appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) {
	kept := status.Conditions[:0]
	for _, c := range status.Conditions {
		if c.Type != t {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	status.Conditions = kept
}
