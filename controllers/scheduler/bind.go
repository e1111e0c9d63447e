package scheduler

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// bindingPatch is the one write that binds a pod: spec.nodeName and the
// termination finalizer, which holds the pod until its node agent has
// stopped it, under the resourceVersion the scheduler decided on, so that
// a pod changed since (or bound by someone else) is refused, not bound
// twice.
func bindingPatch(pod *skiffcorev1.Pod, node string) []byte {
	finalizers := pod.Finalizers
	if !slices.Contains(finalizers, skiffcorev1.PodTerminationFinalizer) {
		finalizers = append(slices.Clip(finalizers), skiffcorev1.PodTerminationFinalizer)
	}
	type meta struct {
		ResourceVersion string   `json:"resourceVersion"`
		Finalizers      []string `json:"finalizers"`
	}
	type spec struct {
		NodeName string `json:"nodeName"`
	}
	b, _ := json.Marshal(struct {
		Metadata meta `json:"metadata"`
		Spec     spec `json:"spec"`
	}{meta{pod.ResourceVersion, finalizers}, spec{node}})
	return b
}

// bind writes the binding of an assumed pod, which ends the scheduling
// attempt that began at start. On success the assumption waits for the
// informer to confirm it; on failure it is forgotten and the pod is
// retried after a backoff, or dropped if it is gone.
func (s *Scheduler) bind(ctx context.Context, qp *QueuedPod, pi *PodInfo, node string, start time.Time) {
	pod := pi.Pod
	target := &skiffcorev1.Pod{}
	target.Namespace, target.Name = pod.Namespace, pod.Name
	err := s.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, bindingPatch(pod, node)))
	switch {
	case err == nil:
		s.cache.FinishBinding(pod.UID)
		s.queue.Done(qp)
		s.events.scheduled(pod, node)
		observeAttempt(resultScheduled, start)
		return
	case apierrors.IsNotFound(err):
		s.cache.Forget(pod.UID)
		s.queue.Done(qp)
	default:
		// A conflict means the pod changed since the cycle read it; the
		// informer brings the new version and the pod is tried again.
		s.log.V(1).Info("binding failed, retrying", "pod", pi.Key(), "node", node, "error", err.Error())
		s.cache.Forget(pod.UID)
		s.queue.Backoff(qp)
	}
	// A refused binding ends the attempt in error, as upstream counts it.
	observeAttempt(resultError, start)
	// The forgotten assumption freed room that parked pods may use.
	s.queue.MoveAllToActive()
}

// recordFailure tells the user why the pod fits nowhere: PodScheduled
// False with upstream's message, and a FailedScheduling Event. When
// preemption found room, it first evicts the victims and records the
// promised node in status.nominatedNodeName.
func (s *Scheduler) recordFailure(ctx context.Context, pi *PodInfo, fe *FitError, p *preemption) {
	pod := pi.Pod
	msg := fe.Error()
	if p == nil && s.cache.IsAssumedOrBound(pod.UID) {
		// A later cycle placed the pod while this write waited for a
		// worker: do not mark a bound pod unschedulable.
		return
	}
	if p != nil {
		for _, v := range p.victims {
			s.evict(ctx, v, pod, p.node.Name)
		}
	}
	updated := pod.DeepCopy()
	changed := podutil.SetCondition(&updated.Status, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg,
	})
	// Upstream's apiserver sets phase Pending when a pod is created; a
	// custom resource starts with no status, so the first status write does.
	if updated.Status.Phase == "" {
		updated.Status.Phase = corev1.PodPending
		changed = true
	}
	if p != nil && updated.Status.NominatedNodeName != p.node.Name {
		updated.Status.NominatedNodeName = p.node.Name
		changed = true
	}
	if changed {
		// Conditional on the pod's resourceVersion: a report that lost a
		// race with a later binding (and the agent's status) is dropped
		// instead of writing Pending over Running.
		patch := client.MergeFromWithOptions(pod, client.MergeFromWithOptimisticLock{})
		err := s.client.Status().Patch(ctx, updated, patch)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			s.log.Error(err, "recording a scheduling failure", "pod", pi.Key())
		}
	}
	s.recorder.Eventf(pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "%s", msg)
}

// evict deletes a preemption victim, after marking it with upstream's
// DisruptionTarget condition so that its owner can tell why it went.
func (s *Scheduler) evict(ctx context.Context, victim *PodInfo, preemptor *skiffcorev1.Pod, node string) {
	v := victim.Pod
	updated := v.DeepCopy()
	if podutil.SetCondition(&updated.Status, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonPreemptionByScheduler,
		Message: "default-scheduler: preempting to accommodate a higher priority pod",
	}) {
		if err := s.client.Status().Patch(ctx, updated, client.MergeFrom(v)); err != nil && !apierrors.IsNotFound(err) {
			s.log.Error(err, "marking a preemption victim", "pod", victim.Key())
		}
	}
	err := s.client.Delete(ctx, v, client.Preconditions{UID: &v.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		s.log.Error(err, "deleting a preemption victim", "pod", victim.Key())
		return
	}
	s.recorder.Eventf(v, preemptor, corev1.EventTypeNormal, "Preempted", "Preempting",
		"Preempted by pod %s on node %s", preemptor.UID, node)
}
