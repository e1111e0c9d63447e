package scheduler

import (
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
)

// taintToleration refuses nodes with a NoSchedule or NoExecute taint that
// the pod does not tolerate. PreferNoSchedule taints only matter to
// scoring, which skiff does not do for them.
type taintToleration struct{}

func (taintToleration) Name() string { return "TaintToleration" }

func (taintToleration) Filter(s *cycleState, n *NodeInfo) *Status {
	if len(n.Node.Spec.Taints) == 0 {
		return nil
	}
	taint, found := schedcorev1.FindMatchingUntoleratedTaint(logr.Discard(), n.Node.Spec.Taints,
		s.pod.Pod.Spec.Tolerations, hardTaint, false)
	if !found {
		return nil
	}
	return unresolvable(untoleratedTaintReason(&taint))
}

// hardTaint selects the taints that keep pods off a node.
func hardTaint(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}
