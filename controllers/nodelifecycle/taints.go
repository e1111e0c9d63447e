package nodelifecycle

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionTaint says which taints a node condition in a given status
// brings, as upstream's TaintNodesByCondition and taint-based eviction do.
type conditionTaint struct {
	condition corev1.NodeConditionType
	status    corev1.ConditionStatus
	key       string
	effects   []corev1.TaintEffect
}

// taintsByCondition is the whole policy. Ready=False and Ready=Unknown also
// bring NoExecute taints, which evict the pods that do not tolerate them.
var taintsByCondition = []conditionTaint{
	{corev1.NodeReady, corev1.ConditionFalse, corev1.TaintNodeNotReady, []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute}},
	{corev1.NodeReady, corev1.ConditionUnknown, corev1.TaintNodeUnreachable, []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute}},
	{corev1.NodeMemoryPressure, corev1.ConditionTrue, corev1.TaintNodeMemoryPressure, []corev1.TaintEffect{corev1.TaintEffectNoSchedule}},
	{corev1.NodeDiskPressure, corev1.ConditionTrue, corev1.TaintNodeDiskPressure, []corev1.TaintEffect{corev1.TaintEffectNoSchedule}},
	{corev1.NodePIDPressure, corev1.ConditionTrue, corev1.TaintNodePIDPressure, []corev1.TaintEffect{corev1.TaintEffectNoSchedule}},
	{corev1.NodeNetworkUnavailable, corev1.ConditionTrue, corev1.TaintNodeNetworkUnavailable, []corev1.TaintEffect{corev1.TaintEffectNoSchedule}},
}

// managedTaintKeys are the taint keys this controller owns: it adds and
// removes them, and leaves every other taint alone.
var managedTaintKeys = func() map[string]bool {
	keys := map[string]bool{corev1.TaintNodeUnschedulable: true}
	for _, ct := range taintsByCondition {
		keys[ct.key] = true
	}
	return keys
}()

// wantedTaints are the controller's taints for a node with this spec and
// status, without timeAdded.
func wantedTaints(spec *corev1.NodeSpec, status *corev1.NodeStatus) []corev1.Taint {
	var taints []corev1.Taint
	for _, ct := range taintsByCondition {
		c := nodeCondition(status, ct.condition)
		if c == nil || c.Status != ct.status {
			continue
		}
		for _, effect := range ct.effects {
			taints = append(taints, corev1.Taint{Key: ct.key, Effect: effect})
		}
	}
	if spec.Unschedulable {
		taints = append(taints, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return taints
}

// reconcileTaints returns the node's taints with the managed ones replaced
// by wanted: other taints are kept in place, a wanted taint already there
// keeps its timeAdded, and a new NoExecute taint is stamped with now, as the
// apiserver does for built-in Nodes (eviction deadlines count from it). A
// NoExecute taint someone else added without timeAdded is stamped too, since
// a CRD has no apiserver code to do it. It reports whether anything changed.
func reconcileTaints(current, wanted []corev1.Taint, now time.Time) ([]corev1.Taint, bool) {
	stamp := metav1.NewTime(now)
	changed := false
	out := make([]corev1.Taint, 0, len(current)+len(wanted))
	for _, t := range current {
		if managedTaintKeys[t.Key] && !containsTaint(wanted, t) {
			changed = true
			continue
		}
		if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded == nil {
			t.TimeAdded = &stamp
			changed = true
		}
		out = append(out, t)
	}
	for _, w := range wanted {
		if containsTaint(current, w) {
			continue
		}
		if w.Effect == corev1.TaintEffectNoExecute {
			w.TimeAdded = &stamp
		}
		out = append(out, w)
		changed = true
	}
	return out, changed
}

// containsTaint reports whether taints hold one with t's key and effect.
func containsTaint(taints []corev1.Taint, t corev1.Taint) bool {
	for i := range taints {
		if taints[i].MatchTaint(&t) {
			return true
		}
	}
	return false
}
