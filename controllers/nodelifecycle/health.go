package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages the controller writes into node conditions, as
// upstream's node lifecycle controller does.
const (
	reasonStatusUnknown       = "NodeStatusUnknown"
	messageStatusUnknown      = "Kubelet stopped posting node status."
	reasonStatusNeverUpdated  = "NodeStatusNeverUpdated"
	messageStatusNeverUpdated = "Kubelet never posted node status."
)

// monitoredConditions are the conditions the node agent reports and this
// controller turns Unknown once the agent is silent. Ready is always there;
// the pressure conditions only when the agent reported them.
var monitoredConditions = []corev1.NodeConditionType{
	corev1.NodeReady,
	corev1.NodeMemoryPressure,
	corev1.NodeDiskPressure,
	corev1.NodePIDPressure,
}

// lastHeartbeat is the most recent sign of life from the node's agent: the
// later of its Lease's renewTime and its Ready condition's heartbeat. A node
// whose agent never reported counts from its creation, so that it gets one
// grace period to start.
func lastHeartbeat(node *corev1.NodeStatus, created metav1.Time, lease *coordinationv1.Lease) time.Time {
	last := created.Time
	if c := nodeCondition(node, corev1.NodeReady); c != nil && c.LastHeartbeatTime.After(last) {
		last = c.LastHeartbeatTime.Time
	}
	if lease != nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(last) {
		last = lease.Spec.RenewTime.Time
	}
	return last
}

// markUnknown sets the monitored conditions to Unknown, as upstream does
// when a node stops posting status: Ready is added if the agent never wrote
// it, the others only change if present. Heartbeat times are kept: they are
// the agent's last words. It reports whether anything changed.
func markUnknown(status *corev1.NodeStatus, now time.Time) bool {
	changed := false
	for _, t := range monitoredConditions {
		c := nodeCondition(status, t)
		switch {
		case c == nil && t == corev1.NodeReady:
			status.Conditions = append(status.Conditions, corev1.NodeCondition{
				Type:               t,
				Status:             corev1.ConditionUnknown,
				Reason:             reasonStatusNeverUpdated,
				Message:            messageStatusNeverUpdated,
				LastTransitionTime: metav1.NewTime(now),
			})
			changed = true
		case c == nil || c.Status == corev1.ConditionUnknown:
			// Absent, or already Unknown: nothing to say.
		default:
			c.Status = corev1.ConditionUnknown
			c.Reason = reasonStatusUnknown
			c.Message = messageStatusUnknown
			c.LastTransitionTime = metav1.NewTime(now)
			changed = true
		}
	}
	return changed
}

// nodeCondition returns the node's condition of type t, or nil.
func nodeCondition(status *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}
