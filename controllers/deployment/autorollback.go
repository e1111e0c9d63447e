package deployment

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// Automatic rollback, beyond upstream: a Deployment that opts in with
// AutoRollbackAnnotation="true" goes back to its last fully available
// revision when a rollout passes its progress deadline. The Deployment
// spec is apps/v1's, field for field, so the opt-in is an annotation.
const (
	AutoRollbackAnnotation = "deploy.skiff.dev/auto-rollback"
	// FullyAvailableAnnotation marks a ReplicaSet whose rollout completed:
	// every replica ran its template and was available.
	FullyAvailableAnnotation = "deploy.skiff.dev/fully-available"
	// ConditionAutoRolledBack records the last automatic rollback and why.
	ConditionAutoRolledBack appsv1.DeploymentConditionType = "AutoRolledBack"
)

// autoRollbackTarget is the highest old revision that was fully available,
// or nil when there is none to go back to.
func autoRollbackTarget(old []*skiffappsv1.ReplicaSet) *skiffappsv1.ReplicaSet {
	var best *skiffappsv1.ReplicaSet
	for _, rs := range old {
		if rs.Annotations[FullyAvailableAnnotation] == "true" && (best == nil || revision(rs) > revision(best)) {
			best = rs
		}
	}
	return best
}

// justTimedOut reports whether this pass turned Progressing into
// ProgressDeadlineExceeded.
func justTimedOut(before, after *appsv1.DeploymentStatus) bool {
	isTimeout := func(s *appsv1.DeploymentStatus) bool {
		c := getCondition(s, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == ReasonProgressDeadlineExceeded
	}
	return isTimeout(after) && !isTimeout(before)
}

// planAutoRollback decides the automatic rollback of d: it records why in
// the AutoRolledBack condition of status and returns the Deployment with the
// template of the last fully available revision, or nil when there is none
// (an Event says so). The caller writes status first, then the spec, so
// that no later pass can read the new template with the old status.
func (r *Reconciler) planAutoRollback(d *skiffappsv1.Deployment, newRS *skiffappsv1.ReplicaSet, old []*skiffappsv1.ReplicaSet, status *appsv1.DeploymentStatus, now time.Time) (*skiffappsv1.Deployment, string) {
	target := autoRollbackTarget(old)
	if target == nil {
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "AutoRollbackImpossible", "Rollback",
			"Rollout of revision %d passed its progress deadline, but no earlier revision was fully available", revision(newRS))
		return nil, ""
	}
	template := target.Spec.Template.DeepCopy()
	delete(template.Labels, PodTemplateHashLabel)
	msg := fmt.Sprintf("Revision %d passed its progress deadline of %ds; rolled back to revision %d, the last fully available one",
		revision(newRS), ptr.Deref(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds), revision(target))
	setCondition(status, condition(ConditionAutoRolledBack, corev1.ConditionTrue, ReasonProgressDeadlineExceeded, msg, now))
	rolledBack := d.DeepCopy()
	rolledBack.Spec.Template = *template
	return rolledBack, msg
}

// markFullyAvailable records on the new ReplicaSet that its rollout
// completed, making it a target for automatic rollback.
func (r *Reconciler) markFullyAvailable(ctx context.Context, rs *skiffappsv1.ReplicaSet) error {
	if rs.Annotations[FullyAvailableAnnotation] == "true" || rs.Name == "" {
		return nil
	}
	patched := rs.DeepCopy()
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[FullyAvailableAnnotation] = strconv.FormatBool(true)
	if err := r.Patch(ctx, patched, client.MergeFrom(rs)); err != nil {
		return fmt.Errorf("marking ReplicaSet %s fully available: %w", rs.Name, err)
	}
	return nil
}
