package scheduler

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestScoringSpreadsOrPacks places one pod between an empty node and a
// half-full one: LeastAllocated picks the empty node, MostAllocated the
// fuller one.
func TestScoringSpreadsOrPacks(t *testing.T) {
	for _, tc := range []struct {
		scoring string
		want    string
	}{{LeastAllocated, "empty"}, {MostAllocated, "half"}} {
		t.Run(tc.scoring, func(t *testing.T) {
			nodes := []*NodeInfo{
				nodeWith(node("empty", "4", "8Gi", 110, nil)),
				nodeWith(node("half", "4", "8Gi", 110, nil), pod("a", "2", "4Gi")),
			}
			a := newAlgorithm(Config{Scoring: tc.scoring})
			for range 20 { // ties are broken at random: there must be none
				got, fe := a.schedule(newCycleState(info(pod("p", "1", "1Gi")), nodes, nil), nodes)
				if fe != nil || got.Name != tc.want {
					t.Fatalf("got %v, %v; want %s", got, fe, tc.want)
				}
			}
		})
	}
}

// TestPreferencesScore checks the preferred node affinity and the soft
// topology spread steer the choice among otherwise equal nodes.
func TestPreferencesScore(t *testing.T) {
	web := map[string]string{"app": "web"}
	cases := []struct {
		name  string
		pod   *skiffcorev1.Pod
		nodes []*NodeInfo
		want  string
	}{
		{"preferred node affinity", pod("p", "", "", func(p *skiffcorev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
				Weight: 10, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"ssd"}}}},
			}}}}
		}), []*NodeInfo{nodeWith(node("hdd", "4", "8Gi", 110, map[string]string{"disk": "hdd"})), nodeWith(node("ssd", "4", "8Gi", 110, map[string]string{"disk": "ssd"}))}, "ssd"},
		{"soft spread", pod("p", "", "", withLabels(web), withSpread(corev1.LabelHostname, 1, corev1.ScheduleAnyway, web)),
			[]*NodeInfo{nodeWith(node("busy", "4", "8Gi", 110, nil), pod("a", "", "", withLabels(web))), nodeWith(node("free", "4", "8Gi", 110, nil))}, "free"},
		{"preferred pod affinity", pod("p", "", "", func(p *skiffcorev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 50, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: web}},
			}}}}
		}), []*NodeInfo{nodeWith(node("alone", "4", "8Gi", 110, nil)), nodeWith(node("friend", "4", "8Gi", 110, nil), pod("a", "", "", withLabels(web)))}, "friend"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlgorithm(Config{})
			for range 20 {
				got, fe := a.schedule(newCycleState(info(tc.pod), tc.nodes, nil), tc.nodes)
				if fe != nil || got.Name != tc.want {
					t.Fatalf("got %v, %v; want %s", got, fe, tc.want)
				}
			}
		})
	}
}

// TestTiesRotate checks that equal nodes all get pods: ties are broken at
// random, not always towards the first node.
func TestTiesRotate(t *testing.T) {
	var nodes []*NodeInfo
	for i := range 5 {
		nodes = append(nodes, nodeWith(node(fmt.Sprintf("n%d", i), "4", "8Gi", 110, nil)))
	}
	a := newAlgorithm(Config{})
	seen := map[string]bool{}
	for range 200 {
		got, _ := a.schedule(newCycleState(info(pod("p", "", "")), nodes, nil), nodes)
		seen[got.Name] = true
	}
	if len(seen) != len(nodes) {
		t.Fatalf("only %v got pods", seen)
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	cases := []struct {
		pct       int32
		all, want int
	}{
		{0, 50, 50},     // small clusters: every node
		{0, 1000, 420},  // 50 - 1000/125 = 42%
		{0, 5000, 500},  // 10%
		{0, 10000, 500}, // floor of 5%
		{0, 150, 100},   // never below 100
		{10, 1000, 100}, // configured
		{100, 1000, 1000},
	}
	for _, tc := range cases {
		a := &algorithm{percentage: tc.pct}
		if got := a.numFeasibleNodesToFind(tc.all); got != tc.want {
			t.Errorf("percentage %d of %d nodes: got %d, want %d", tc.pct, tc.all, got, tc.want)
		}
	}
}

// TestFindFeasibleRotates checks that successive cycles start filtering
// where the last one stopped, so that all nodes are visited fairly.
func TestFindFeasibleRotates(t *testing.T) {
	var nodes []*NodeInfo
	for i := range 300 {
		nodes = append(nodes, nodeWith(node(fmt.Sprintf("n%03d", i), "4", "8Gi", 110, nil)))
	}
	a := newAlgorithm(Config{PercentageOfNodesToScore: 10}) // 100 of 300
	s := newCycleState(info(pod("p", "", "")), nodes, nil)
	for _, wantFirst := range []string{"n000", "n100", "n200", "n000"} {
		feasible, _ := a.findFeasible(s, nodes)
		if len(feasible) != 100 || feasible[0].Name != wantFirst {
			t.Fatalf("got %d nodes from %s, want 100 from %s", len(feasible), feasible[0].Name, wantFirst)
		}
	}
}

func TestFailureMessage(t *testing.T) {
	taint := "node(s) had untolerated taint {dedicated: gpu}"
	cases := []struct {
		name string
		err  *FitError
		want string
	}{
		{"no nodes", &FitError{}, "no nodes available to schedule pods"},
		{"by count then name", &FitError{NumNodes: 5, Statuses: map[string]*Status{
			"a": resolvable("Insufficient cpu"), "b": resolvable("Insufficient cpu"), "c": resolvable("Insufficient cpu"),
			"d": unresolvable(taint), "e": unresolvable(taint),
		}, PostFilter: "preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."},
			"0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/5 nodes are available: 5 Preemption is not helpful for scheduling."},
		{"several reasons on one node", &FitError{NumNodes: 2, Statuses: map[string]*Status{
			"a": resolvable("Insufficient cpu", "Insufficient memory"), "b": resolvable("Insufficient memory"),
		}}, "0/2 nodes are available: 2 Insufficient memory, 1 Insufficient cpu."},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestUnschedulableDiagnosis runs a whole cycle that fails and checks the
// message preemption completes.
func TestUnschedulableDiagnosis(t *testing.T) {
	tainted := node("t1", "4", "8Gi", 110, nil)
	tainted.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	nodes := []*NodeInfo{
		nodeWith(node("n1", "2", "8Gi", 110, nil), pod("a", "2", "", withPriority(10))),
		nodeWith(node("n2", "2", "8Gi", 110, nil), pod("b", "1", "", withPriority(10))),
		nodeWith(tainted),
	}
	a := newAlgorithm(Config{})
	s := newCycleState(info(pod("p", "2", "", withPriority(10))), nodes, nil)
	_, fe := a.schedule(s, nodes)
	if fe == nil {
		t.Fatal("the pod fit")
	}
	if p := a.preempt(s, nodes, fe); p != nil {
		t.Fatalf("preempted %v", p.victims)
	}
	want := "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. " +
		"preemption: 0/3 nodes are available: 2 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
	if got := fe.Error(); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}
