package statefulset

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// calculateStatus counts the set's pods as upstream: replicas counts
// every pod created, terminating ones included; readyReplicas and
// availableReplicas those Running and Ready (for minReadySeconds);
// currentReplicas and updatedReplicas the pods not being deleted, by
// revision. The current revision becomes the update revision once every
// wanted pod runs it and is ready, and no other pod is left, as upstream's
// completed update.
func calculateStatus(set *skiffappsv1.StatefulSet, pods map[int]*skiffcorev1.Pod, current, update string, now time.Time) appsv1.StatefulSetStatus {
	s := appsv1.StatefulSetStatus{
		ObservedGeneration: set.Generation,
		CurrentRevision:    current,
		UpdateRevision:     update,
		CollisionCount:     ptr.To(ptr.Deref(set.Status.CollisionCount, 0)),
		Conditions:         set.Status.Conditions,
	}
	for _, p := range pods {
		s.Replicas++
		if p.Status.Phase == corev1.PodRunning && podutil.IsReady(p) {
			s.ReadyReplicas++
			if podutil.IsAvailable(p, set.Spec.MinReadySeconds, now) {
				s.AvailableReplicas++
			}
		}
		if podutil.IsTerminating(p) {
			continue
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == current {
			s.CurrentReplicas++
		}
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] == update {
			s.UpdatedReplicas++
		}
	}
	replicas := ptr.Deref(set.Spec.Replicas, 1)
	if s.UpdatedReplicas == replicas && s.ReadyReplicas == replicas && s.Replicas == replicas {
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
