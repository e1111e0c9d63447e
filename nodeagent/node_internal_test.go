package nodeagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestReadinessChange checks which changes of the Ready condition the
// agent tells in an Event, as upstream's kubelet.
func TestReadinessChange(t *testing.T) {
	status := func(ready corev1.ConditionStatus) corev1.NodeStatus {
		if ready == "" {
			return corev1.NodeStatus{}
		}
		return corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			{Type: corev1.NodeReady, Status: ready},
		}}
	}
	for _, tc := range []struct {
		name       string
		old, new   corev1.ConditionStatus
		wantReason string
	}{
		{"a new node that is ready", "", corev1.ConditionTrue, "NodeReady"},
		{"a new node whose network is not ready: no news", "", corev1.ConditionFalse, ""},
		{"its network became ready", corev1.ConditionFalse, corev1.ConditionTrue, "NodeReady"},
		{"back after the controller marked it Unknown", corev1.ConditionUnknown, corev1.ConditionTrue, "NodeReady"},
		{"its network went away", corev1.ConditionTrue, corev1.ConditionFalse, "NodeNotReady"},
		{"still ready", corev1.ConditionTrue, corev1.ConditionTrue, ""},
		{"still not ready", corev1.ConditionFalse, corev1.ConditionFalse, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ok := readinessChange(status(tc.old), status(tc.new))
			if reason != tc.wantReason || ok != (tc.wantReason != "") {
				t.Errorf("readinessChange(%q, %q) = %q, %v; want %q", tc.old, tc.new, reason, ok, tc.wantReason)
			}
		})
	}
}
