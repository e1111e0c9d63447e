// Package podutil answers the questions about skiff Pods that every
// controller and the node agent ask: is it active, ready, available, what
// does it request. It also views skiff's Pod and Node as their upstream
// core/v1 twins, so that upstream helper libraries (k8s.io/component-helpers)
// can be used on them unchanged.
package podutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// AsCore returns the upstream core/v1 Pod that p mirrors. It shares p's
// memory: treat the result as read-only.
func AsCore(p *skiffcorev1.Pod) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: p.ObjectMeta, Spec: p.Spec, Status: p.Status}
}

// NodeAsCore returns the upstream core/v1 Node that n mirrors. It shares n's
// memory: treat the result as read-only.
func NodeAsCore(n *skiffcorev1.Node) *corev1.Node {
	return &corev1.Node{ObjectMeta: n.ObjectMeta, Spec: n.Spec, Status: n.Status}
}

// IsTerminal reports whether the pod has finished for good.
func IsTerminal(p *skiffcorev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// IsTerminating reports whether the pod is being deleted.
func IsTerminating(p *skiffcorev1.Pod) bool {
	return p.DeletionTimestamp != nil
}

// IsActive reports whether the pod counts towards its controller's
// replicas: neither finished nor being deleted, as upstream's
// controller.IsPodActive.
func IsActive(p *skiffcorev1.Pod) bool {
	return !IsTerminal(p) && !IsTerminating(p)
}

// Condition returns the pod's condition of type t, or nil.
func Condition(status *corev1.PodStatus, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

// SetCondition adds or updates the condition of c.Type. The transition time
// moves only when the status changes, as upstream does; it reports whether
// anything changed.
func SetCondition(status *corev1.PodStatus, c corev1.PodCondition) bool {
	old := Condition(status, c.Type)
	if old == nil {
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = metav1.Now()
		}
		status.Conditions = append(status.Conditions, c)
		return true
	}
	if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
		return false
	}
	if old.Status != c.Status {
		c.LastTransitionTime = metav1.Now()
	} else {
		c.LastTransitionTime = old.LastTransitionTime
	}
	*old = c
	return true
}

// IsReady reports whether the pod's Ready condition is True.
func IsReady(p *skiffcorev1.Pod) bool {
	c := Condition(&p.Status, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// IsAvailable reports whether the pod has been ready for at least
// minReadySeconds at now, as upstream's podutil.IsPodAvailable.
func IsAvailable(p *skiffcorev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := Condition(&p.Status, corev1.PodReady)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	return !c.LastTransitionTime.IsZero() &&
		c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// Requests is what the pod asks of a node: the larger of its init
// containers' and the sum of its app containers' requests, plus overhead,
// computed by upstream's own helper.
func Requests(p *skiffcorev1.Pod) corev1.ResourceList {
	return resourcehelper.PodRequests(AsCore(p), resourcehelper.PodResourcesOptions{})
}
