package deployment

import (
	"fmt"
	"math"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// Condition reasons, as upstream, so that kubectl rollout status and other
// tools read skiff Deployments as they read apps/v1 ones.
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	ReasonDeploymentPaused           = "DeploymentPaused"
	ReasonDeploymentResumed          = "DeploymentResumed"
)

// defaultProgressDeadlineSeconds is upstream's default for
// spec.progressDeadlineSeconds; math.MaxInt32 means no deadline.
const defaultProgressDeadlineSeconds = 600

// calculateStatus derives a Deployment's status from its ReplicaSets. created
// says the new ReplicaSet was created in this pass.
func calculateStatus(d *skiffappsv1.Deployment, newRS *skiffappsv1.ReplicaSet, old []*skiffappsv1.ReplicaSet, strategy Strategy, created bool, now time.Time) appsv1.DeploymentStatus {
	status := *d.Status.DeepCopy()
	all := append([]*skiffappsv1.ReplicaSet{newRS}, old...)
	var wanted, replicas, ready, available int32
	for _, rs := range all {
		// The placeholder for a new ReplicaSet not created yet wants none.
		wanted += ptr.Deref(rs.Spec.Replicas, 0)
		replicas += rs.Status.Replicas
		ready += rs.Status.ReadyReplicas
		available += rs.Status.AvailableReplicas
	}
	desired := ptr.Deref(d.Spec.Replicas, 1)
	status.ObservedGeneration = d.Generation
	status.Replicas = replicas
	status.UpdatedReplicas = newRS.Status.Replicas
	status.ReadyReplicas = ready
	status.AvailableReplicas = available
	// As upstream: the pods the ReplicaSets want that are not available,
	// so that surge pods still starting count too.
	status.UnavailableReplicas = max(wanted-available, 0)
	status.TerminatingReplicas = terminatingReplicas(all)

	if available >= desired-strategy.MaxUnavailable {
		setCondition(&status, condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "Deployment has minimum availability.", now))
	} else {
		setCondition(&status, condition(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability.", now))
	}
	setProgressing(d, &status, newRS.Name, created, now)
	if failure := replicaFailure(newRS, old); failure != nil {
		setCondition(&status, *failure)
	} else {
		removeCondition(&status, appsv1.DeploymentReplicaFailure)
	}
	return status
}

// terminatingReplicas sums the ReplicaSets' terminating pods, as upstream
// (a beta field on by default). A ReplicaSet its controller has not synced
// yet counts none; one synced without a count makes the sum unknown (nil).
func terminatingReplicas(rss []*skiffappsv1.ReplicaSet) *int32 {
	var n int32
	for _, rs := range rss {
		switch {
		case rs.Status.TerminatingReplicas != nil:
			n += *rs.Status.TerminatingReplicas
		case rs.Status.ObservedGeneration != 0:
			return nil
		}
	}
	return &n
}

// replicaFailure is the ReplicaFailure condition the Deployment shows, as
// upstream: the new ReplicaSet's (its pods refused by admission or quota),
// else the first old one's, else none.
func replicaFailure(newRS *skiffappsv1.ReplicaSet, old []*skiffappsv1.ReplicaSet) *appsv1.DeploymentCondition {
	for _, rs := range append([]*skiffappsv1.ReplicaSet{newRS}, old...) {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return &appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: c.Status, Reason: c.Reason,
					Message: c.Message, LastUpdateTime: c.LastTransitionTime, LastTransitionTime: c.LastTransitionTime}
			}
		}
	}
	return nil
}

// setProgressing maintains the Progressing condition as upstream: True while
// the rollout makes progress (its lastUpdateTime moves), True with
// NewReplicaSetAvailable once complete, False with ProgressDeadlineExceeded
// when no progress was seen for progressDeadlineSeconds. A complete rollout
// is not judged again while every pod runs the new template: a scale-up or
// a replaced pod is no rollout, and cannot time out.
func setProgressing(d *skiffappsv1.Deployment, status *appsv1.DeploymentStatus, newRSName string, created bool, now time.Time) {
	current := getCondition(status, appsv1.DeploymentProgressing)
	switch {
	case d.Spec.Paused:
		setCondition(status, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentPaused, "Deployment is paused", now))
	case !hasProgressDeadline(d):
		// Without a deadline there is no progress to judge: upstream shows
		// no Progressing condition.
		removeCondition(status, appsv1.DeploymentProgressing)
	case current != nil && current.Reason == ReasonDeploymentPaused:
		setCondition(status, condition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ReasonDeploymentResumed, "Deployment is resumed", now))
	case !created && status.Replicas == status.UpdatedReplicas && current != nil && current.Reason == ReasonNewReplicaSetAvailable:
		// Complete, and no old pod is back: nothing to judge.
	case complete(d, status):
		setCondition(status, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetAvailable,
			fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRSName), now))
	case created:
		setCondition(status, condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetCreated,
			fmt.Sprintf("Created new replica set %q", newRSName), now))
	case progressed(&d.Status, status):
		c := condition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated,
			fmt.Sprintf("ReplicaSet %q is progressing.", newRSName), now)
		// Progress moves lastUpdateTime even when the reason stays.
		if current != nil && current.Status == c.Status {
			c.LastTransitionTime = current.LastTransitionTime
		}
		removeCondition(status, appsv1.DeploymentProgressing)
		status.Conditions = append(status.Conditions, c)
	case deadlineExceeded(d, current, now):
		setCondition(status, condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadlineExceeded,
			fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRSName), now))
	}
}

// complete reports whether every replica runs the new template and is
// available, with nothing old left.
func complete(d *skiffappsv1.Deployment, s *appsv1.DeploymentStatus) bool {
	desired := ptr.Deref(d.Spec.Replicas, 1)
	return s.UpdatedReplicas == desired && s.Replicas == desired && s.AvailableReplicas == desired && s.ObservedGeneration >= d.Generation
}

// progressed reports whether the rollout moved since the last status: more
// updated, ready or available pods, or fewer old ones.
func progressed(before, after *appsv1.DeploymentStatus) bool {
	oldBefore := before.Replicas - before.UpdatedReplicas
	oldAfter := after.Replicas - after.UpdatedReplicas
	return after.UpdatedReplicas > before.UpdatedReplicas || after.ReadyReplicas > before.ReadyReplicas ||
		after.AvailableReplicas > before.AvailableReplicas || oldAfter < oldBefore
}

// hasProgressDeadline reports whether progress is judged at all: upstream's
// progressDeadlineSeconds of math.MaxInt32 means never.
func hasProgressDeadline(d *skiffappsv1.Deployment) bool {
	return ptr.Deref(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds) != math.MaxInt32
}

// deadlineExceeded reports whether the last progress is older than
// progressDeadlineSeconds.
func deadlineExceeded(d *skiffappsv1.Deployment, progressing *appsv1.DeploymentCondition, now time.Time) bool {
	seconds := ptr.Deref(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)
	if seconds == math.MaxInt32 || progressing == nil {
		return false
	}
	if progressing.Reason == ReasonNewReplicaSetAvailable || progressing.Reason == ReasonProgressDeadlineExceeded {
		return false
	}
	return !progressing.LastUpdateTime.Add(time.Duration(seconds) * time.Second).After(now)
}

// nextDeadlineCheck is when the progress deadline runs out, if a rollout is
// under way: nothing else would wake the controller then.
func nextDeadlineCheck(d *skiffappsv1.Deployment, status *appsv1.DeploymentStatus, now time.Time) (time.Duration, bool) {
	seconds := ptr.Deref(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)
	c := getCondition(status, appsv1.DeploymentProgressing)
	if seconds == math.MaxInt32 || d.Spec.Paused || c == nil || c.Status != corev1.ConditionTrue || c.Reason == ReasonNewReplicaSetAvailable {
		return 0, false
	}
	return max(c.LastUpdateTime.Add(time.Duration(seconds)*time.Second).Sub(now), 0) + time.Second, true
}

func condition(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, message string, now time.Time) appsv1.DeploymentCondition {
	ts := metav1.NewTime(now)
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: message, LastUpdateTime: ts, LastTransitionTime: ts}
}

func getCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setCondition sets c as upstream's SetDeploymentCondition: a condition with
// the same status and reason is left alone; one with the same status keeps
// its lastTransitionTime.
func setCondition(s *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	current := getCondition(s, c.Type)
	if current != nil && current.Status == c.Status && current.Reason == c.Reason {
		return
	}
	if current != nil && current.Status == c.Status {
		c.LastTransitionTime = current.LastTransitionTime
	}
	removeCondition(s, c.Type)
	s.Conditions = append(s.Conditions, c)
}

func removeCondition(s *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) {
	kept := s.Conditions[:0]
	for _, c := range s.Conditions {
		if c.Type != t {
			kept = append(kept, c)
		}
	}
	s.Conditions = kept
}
