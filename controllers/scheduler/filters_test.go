package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestFilters runs every filter against one candidate node (the first in
// nodes; the others are there for cluster-wide counts) and checks the
// reason given, or that the pod fits.
func TestFilters(t *testing.T) {
	zone := func(z string) map[string]string { return map[string]string{"zone": z} }
	web := map[string]string{"app": "web"}
	notReady := func() *skiffcorev1.Node {
		n := node("n1", "4", "8Gi", 110, nil)
		n.Status.Conditions[0].Status = corev1.ConditionFalse
		return n
	}
	unknown := func() *skiffcorev1.Node {
		n := node("n1", "4", "8Gi", 110, nil)
		n.Status.Conditions[0].Status = corev1.ConditionUnknown
		return n
	}
	cordoned := func() *skiffcorev1.Node {
		n := node("n1", "4", "8Gi", 110, nil)
		n.Spec.Unschedulable = true
		return n
	}
	tainted := func() *skiffcorev1.Node {
		n := node("n1", "4", "8Gi", 110, nil)
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		return n
	}
	cases := []struct {
		name   string
		pod    *skiffcorev1.Pod
		nodes  []*NodeInfo
		reason string // "" means the pod fits
		unres  bool
	}{
		{"fits an empty node", pod("p", "1", "1Gi"), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil))}, "", false},
		{"fits exactly", pod("p", "1", "1Gi"), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "3", "7Gi"))}, "", false},
		{"insufficient cpu", pod("p", "2", "1Gi"), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "3", ""))}, "Insufficient cpu", false},
		{"insufficient memory", pod("p", "1", "2Gi"), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "", "7Gi"))}, "Insufficient memory", false},
		{"bigger than the node", pod("p", "8", ""), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil))}, "Insufficient cpu", true},
		{"too many pods", pod("p", "", ""), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 1, nil), pod("a", "", ""))}, "Too many pods", false},
		{"node selector matches", pod("p", "", "", withNodeSelector(zone("a"))), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")))}, "", false},
		{"node selector does not match", pod("p", "", "", withNodeSelector(zone("a"))), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("b")))}, nodeAffinityReason, true},
		{"required node affinity does not match", pod("p", "", "", func(p *skiffcorev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "c"}}}}},
			}}}
		}), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("b")))}, nodeAffinityReason, true},
		{"untolerated taint", pod("p", "", ""), []*NodeInfo{nodeWith(tainted())}, "node(s) had untolerated taint {dedicated: gpu}", true},
		{"tolerated taint", pod("p", "", "", withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule})), []*NodeInfo{nodeWith(tainted())}, "", false},
		{"cordoned", pod("p", "", ""), []*NodeInfo{nodeWith(cordoned())}, "node(s) were unschedulable", true},
		{"cordoned, tolerated", pod("p", "", "", withTolerations(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists})), []*NodeInfo{nodeWith(cordoned())}, "", false},
		{"not ready", pod("p", "", ""), []*NodeInfo{nodeWith(notReady())}, "node(s) had untolerated taint {node.kubernetes.io/not-ready: }", true},
		{"unreachable", pod("p", "", ""), []*NodeInfo{nodeWith(unknown())}, "node(s) had untolerated taint {node.kubernetes.io/unreachable: }", true},
		{"not ready, tolerated", pod("p", "", "", withTolerations(corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists})), []*NodeInfo{nodeWith(notReady())}, "", false},
		{"host port taken", pod("p", "", "", withHostPort(8080)), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "", "", withHostPort(8080)))}, hostPortsReason, false},
		{"another host port", pod("p", "", "", withHostPort(8081)), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "", "", withHostPort(8080)))}, "", false},
		{"pod anti-affinity", pod("p", "", "", withLabels(web), withAntiAffinity(corev1.LabelHostname, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "", "", withLabels(web)))}, antiAffinityReason, false},
		{"pod anti-affinity, other node", pod("p", "", "", withLabels(web), withAntiAffinity(corev1.LabelHostname, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil)), nodeWith(node("n2", "4", "8Gi", 110, nil), pod("a", "", "", withLabels(web)))}, "", false},
		{"existing pod's anti-affinity", pod("p", "", "", withLabels(web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil), pod("a", "", "", withAntiAffinity(corev1.LabelHostname, web)))}, existingAntiAffinityReason, false},
		{"pod affinity, no match in the zone", pod("p", "", "", withAffinity("zone", web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a"))), nodeWith(node("n2", "4", "8Gi", 110, zone("b")), pod("a", "", "", withLabels(web)))}, affinityReason, true},
		{"pod affinity, match in the zone", pod("p", "", "", withAffinity("zone", web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a"))), nodeWith(node("n2", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web)))}, "", false},
		{"pod affinity, first of its group", pod("p", "", "", withLabels(web), withAffinity("zone", web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")))}, "", false},
		{"spread, skew too big", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.DoNotSchedule, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web))), nodeWith(node("n2", "4", "8Gi", 110, zone("b")))}, spreadReason, false},
		{"spread, emptiest zone", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.DoNotSchedule, web)),
			[]*NodeInfo{nodeWith(node("n2", "4", "8Gi", 110, zone("b"))), nodeWith(node("n1", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web)))}, "", false},
		{"spread, fewer domains than minDomains", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.DoNotSchedule, web), func(p *skiffcorev1.Pod) {
			three := int32(3)
			p.Spec.TopologySpreadConstraints[0].MinDomains = &three
		}), []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web))), nodeWith(node("n2", "4", "8Gi", 110, zone("b")), pod("b", "", "", withLabels(web)))}, spreadReason, false},
		{"spread, enough domains", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.DoNotSchedule, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web))), nodeWith(node("n2", "4", "8Gi", 110, zone("b")), pod("b", "", "", withLabels(web)))}, "", false},
		{"spread, node without the key", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.DoNotSchedule, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil))}, spreadLabelReason, true},
		{"spread, ScheduleAnyway never filters", pod("p", "", "", withLabels(web), withSpread("zone", 1, corev1.ScheduleAnyway, web)),
			[]*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, zone("a")), pod("a", "", "", withLabels(web))), nodeWith(node("n2", "4", "8Gi", 110, zone("b")))}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlgorithm(Config{})
			s := newCycleState(info(tc.pod), tc.nodes, nil)
			st := a.filterNode(s, tc.nodes[0])
			switch {
			case tc.reason == "" && st != nil:
				t.Fatalf("want a fit, got %v", st.Reasons)
			case tc.reason != "" && st == nil:
				t.Fatalf("want %q, got a fit", tc.reason)
			case tc.reason != "" && (strings.Join(st.Reasons, ", ") != tc.reason || st.Unresolvable != tc.unres):
				t.Fatalf("got %v (unresolvable %v), want %q (unresolvable %v)", st.Reasons, st.Unresolvable, tc.reason, tc.unres)
			}
		})
	}
}

// TestNominatedPodsHoldTheirRoom checks that a pod nominated to a node by
// preemption counts there for pods of lower or equal priority, not for
// higher ones.
func TestNominatedPodsHoldTheirRoom(t *testing.T) {
	n := nodeWith(node("n1", "2", "8Gi", 110, nil))
	nominated := map[string][]*PodInfo{"n1": {info(pod("big", "2", "", withPriority(100)))}}
	a := newAlgorithm(Config{})
	for _, tc := range []struct {
		priority int32
		fits     bool
	}{{50, false}, {100, false}, {200, true}} {
		s := newCycleState(info(pod("p", "1", "", withPriority(tc.priority))), []*NodeInfo{n}, nominated)
		if got := a.filterNode(s, n) == nil; got != tc.fits {
			t.Errorf("priority %d: fits = %v, want %v", tc.priority, got, tc.fits)
		}
	}
}
