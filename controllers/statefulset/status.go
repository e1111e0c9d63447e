package statefulset

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// calculateStatus counts the set's active pods by readiness and revision.
// The current revision becomes the update revision once every wanted pod
// runs it and is ready, as upstream's completed rolling update.
func calculateStatus(set *skiffappsv1.StatefulSet, pods map[int]*skiffcorev1.Pod, current, update string, now time.Time) appsv1.StatefulSetStatus {
	s := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    current,
		UpdateRevision:     update,
		CollisionCount:     set.Status.CollisionCount,
		Conditions:         set.Status.Conditions,
	}
	for _, p := range pods {
		if !podutil.IsActive(p) {
			continue
		}
		s.Replicas++
		if podutil.IsReady(p) {
			s.ReadyReplicas++
		}
		if podutil.IsAvailable(p, set.Spec.MinReadySeconds, now) {
			s.AvailableReplicas++
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == current {
			s.CurrentReplicas++
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == update {
			s.UpdatedReplicas++
		}
	}
	replicas := ptr.Deref(set.Spec.Replicas, 1)
	if current != update && s.UpdatedReplicas == replicas && s.ReadyReplicas == replicas && s.Replicas == replicas {
		s.CurrentRevision = update
		s.CurrentReplicas = s.UpdatedReplicas
	}
	return s
}

// writeStatus writes the status when it changed, as an update with the
// resourceVersion it was computed from.
func (r *Reconciler) writeStatus(ctx context.Context, set *skiffappsv1.StatefulSet, status appsv1.StatefulSetStatus) error {
	if equality.Semantic.DeepEqual(set.Status, status) {
		return nil
	}
	set.Status = status
	if err := r.Status().Update(ctx, set); err != nil {
		return fmt.Errorf("writing the status of %s/%s: %w", set.Namespace, set.Name, err)
	}
	return nil
}
