package scheduler

import (
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestPreemptionVictims(t *testing.T) {
	never := corev1.PreemptNever
	web := map[string]string{"app": "web"}
	cases := []struct {
		name        string
		pod         *skiffcorev1.Pod
		nodes       func() []*NodeInfo
		wantNode    string
		wantVictims []string
		wantMsg     string // PostFilter when there is no candidate
	}{
		{"keeps the higher-priority pod, even at the cost of more victims", pod("p", "2", "", withPriority(100)), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "4", "8Gi", 110, nil),
				pod("low1", "1", "", withPriority(1)), pod("low2", "1", "", withPriority(2)), pod("mid", "2", "", withPriority(50)))}
		}, "n1", []string{"low1", "low2"}, ""},
		{"keeps the most important pods", pod("p", "1", "", withPriority(100)), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil),
				pod("low", "1", "", withPriority(1)), pod("mid", "1", "", withPriority(50)))}
		}, "n1", []string{"low"}, ""},
		{"prefers the node with the least important victims", pod("p", "2", "", withPriority(100)), func() []*NodeInfo {
			return []*NodeInfo{
				nodeWith(node("n1", "2", "8Gi", 110, nil), pod("mid", "2", "", withPriority(50))),
				nodeWith(node("n2", "2", "8Gi", 110, nil), pod("low", "2", "", withPriority(5))),
			}
		}, "n2", []string{"low"}, ""},
		{"then fewer victims", pod("p", "2", "", withPriority(100)), func() []*NodeInfo {
			return []*NodeInfo{
				nodeWith(node("n1", "2", "8Gi", 110, nil), pod("a", "1", "", withPriority(5)), pod("b", "1", "", withPriority(0))),
				nodeWith(node("n2", "2", "8Gi", 110, nil), pod("c", "2", "", withPriority(5))),
			}
		}, "n2", []string{"c"}, ""},
		{"frees a host port", pod("p", "", "", withPriority(100), withHostPort(80)), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil), pod("low", "", "", withPriority(1), withHostPort(80)), pod("other", "", "", withPriority(1)))}
		}, "n1", []string{"low"}, ""},
		{"resolves anti-affinity", pod("p", "", "", withPriority(100), withAntiAffinity(corev1.LabelHostname, web)), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil), pod("low", "", "", withPriority(1), withLabels(web)), pod("other", "", "", withPriority(1)))}
		}, "n1", []string{"low"}, ""},
		{"never evicts equal or higher priority", pod("p", "2", "", withPriority(100)), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil), pod("same", "2", "", withPriority(100)))}
		}, "", nil, "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."},
		{"a taint is not helped", pod("p", "1", "", withPriority(100)), func() []*NodeInfo {
			n := node("n1", "2", "8Gi", 110, nil)
			n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
			return []*NodeInfo{nodeWith(n, pod("low", "2", "", withPriority(1)))}
		}, "", nil, "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."},
		{"preemptionPolicy Never", pod("p", "2", "", withPriority(100), func(p *skiffcorev1.Pod) { p.Spec.PreemptionPolicy = &never }), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil), pod("low", "2", "", withPriority(1)))}
		}, "", nil, "preemption: not eligible due to preemptionPolicy=Never."},
		{"waits for terminating victims on its nominated node", pod("p", "2", "", withPriority(100), func(p *skiffcorev1.Pod) { p.Status.NominatedNodeName = "n1" }), func() []*NodeInfo {
			return []*NodeInfo{nodeWith(node("n1", "2", "8Gi", 110, nil), pod("going", "2", "", withPriority(1), func(p *skiffcorev1.Pod) {
				now := metav1.Now()
				p.DeletionTimestamp = &now
			}))}
		}, "", nil, "preemption: not eligible due to a terminating pod on the nominated node."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := tc.nodes()
			a := newAlgorithm(Config{})
			s := newCycleState(info(tc.pod), nodes, nil)
			_, fe := a.schedule(s, nodes)
			if fe == nil {
				t.Fatal("the pod fit without preemption")
			}
			p := a.preempt(s, nodes, fe)
			if tc.wantNode == "" {
				if p != nil {
					t.Fatalf("preempted on %s", p.node.Name)
				}
				if fe.PostFilter != tc.wantMsg {
					t.Fatalf("got %q, want %q", fe.PostFilter, tc.wantMsg)
				}
				return
			}
			if p == nil {
				t.Fatalf("no preemption: %s", fe.Error())
			}
			var names []string
			for _, v := range p.victims {
				names = append(names, v.Pod.Name)
			}
			sort.Strings(names)
			if p.node.Name != tc.wantNode || strings.Join(names, ",") != strings.Join(tc.wantVictims, ",") {
				t.Fatalf("got %s %v, want %s %v", p.node.Name, names, tc.wantNode, tc.wantVictims)
			}
			// The what-if runs must leave the real node untouched.
			if got := len(nodes[0].pods) + len(nodes[len(nodes)-1].pods); got == 0 {
				t.Fatal("the cache's nodes lost their pods")
			}
		})
	}
}
