package scheduler

import (
	"fmt"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
)

// nodeReady refuses cordoned nodes and nodes whose Ready condition is not
// True. Upstream leaves readiness to the taints that the node lifecycle
// controller adds; this filter reads the condition too, so that a node is
// skipped from the moment it stops being ready rather than from the moment
// the taint lands. A pod that tolerates the matching taint passes, as
// upstream's DaemonSet pods do.
type nodeReady struct{}

func (nodeReady) Name() string { return "NodeReady" }

var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

func (nodeReady) Filter(s *cycleState, n *NodeInfo) *Status {
	tolerations := s.pod.Pod.Spec.Tolerations
	if n.Node.Spec.Unschedulable && !tolerates(tolerations, &unschedulableTaint) {
		return unresolvable("node(s) were unschedulable")
	}
	if n.notReady != nil && !tolerates(tolerations, n.notReady) {
		return unresolvable(untoleratedTaintReason(n.notReady))
	}
	return nil
}

// readinessTaint is the taint that stands for the node's Ready condition:
// not-ready when it is False or missing, unreachable when Unknown, nil when
// the node is ready.
func readinessTaint(n *corev1.Node) *corev1.Taint {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		switch c.Status {
		case corev1.ConditionTrue:
			return nil
		case corev1.ConditionUnknown:
			return &corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}
		}
		break
	}
	return &corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
}

// tolerates reports whether any toleration tolerates the taint.
func tolerates(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	return schedcorev1.TolerationsTolerateTaint(logr.Discard(), tolerations, taint, false)
}

// untoleratedTaintReason is upstream's wording for a taint in the way.
func untoleratedTaintReason(t *corev1.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}
