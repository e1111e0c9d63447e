package daemonset

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func node(name string, labels map[string]string, taints ...corev1.Taint) *skiffcorev1.Node {
	return &skiffcorev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
	}
}

func taint(key string, effect corev1.TaintEffect) corev1.Taint {
	return corev1.Taint{Key: key, Value: "x", Effect: effect}
}

func TestNodeEligibility(t *testing.T) {
	requireZone := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		}}},
	}}
	deleting := node("n", nil)
	deleting.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name      string
		spec      corev1.PodSpec
		node      *skiffcorev1.Node
		run, keep bool
	}{
		{name: "plain node", node: node("n", nil), run: true, keep: true},
		{name: "nodeSelector matches", spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}},
			node: node("n", map[string]string{"disk": "ssd"}), run: true, keep: true},
		{name: "nodeSelector does not match", spec: corev1.PodSpec{NodeSelector: map[string]string{"disk": "ssd"}},
			node: node("n", map[string]string{"disk": "hdd"})},
		{name: "required affinity matches", spec: corev1.PodSpec{Affinity: requireZone},
			node: node("n", map[string]string{"zone": "a"}), run: true, keep: true},
		{name: "required affinity does not match", spec: corev1.PodSpec{Affinity: requireZone},
			node: node("n", map[string]string{"zone": "b"})},
		{name: "untolerated NoSchedule keeps new pods off but lets a running one stay",
			node: node("n", nil, taint("dedicated", corev1.TaintEffectNoSchedule)), keep: true},
		{name: "untolerated NoExecute evicts",
			node: node("n", nil, taint("dedicated", corev1.TaintEffectNoExecute))},
		{name: "PreferNoSchedule does not matter",
			node: node("n", nil, taint("dedicated", corev1.TaintEffectPreferNoSchedule)), run: true, keep: true},
		{name: "tolerated NoExecute",
			spec: corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}},
			node: node("n", nil, taint("dedicated", corev1.TaintEffectNoExecute)), run: true, keep: true},
		{name: "not-ready is tolerated automatically",
			node: node("n", nil, taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute), taint(corev1.TaintNodeNotReady, corev1.TaintEffectNoSchedule)),
			keep: true},
		{name: "unreachable NoExecute is tolerated automatically",
			node: node("n", nil, taint(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)), run: true, keep: true},
		{name: "cordoned node is tolerated automatically",
			node: node("n", nil, taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)), run: true, keep: true},
		{name: "pressure is tolerated automatically",
			node: node("n", nil, taint(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule),
				taint(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule), taint(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)),
			run: true, keep: true},
		{name: "network-unavailable keeps pod-network daemons off",
			node: node("n", nil, taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), keep: true},
		{name: "network-unavailable is tolerated for hostNetwork", spec: corev1.PodSpec{HostNetwork: true},
			node: node("n", nil, taint(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), run: true, keep: true},
		{name: "spec.nodeName names another node", spec: corev1.PodSpec{NodeName: "other"}, node: node("n", nil)},
		{name: "node being deleted", node: deleting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec.DeepCopy()
			spec.Tolerations = withDaemonTolerations(spec)
			got := nodeEligibility(spec, tt.node)
			if got.shouldRun != tt.run || got.shouldContinueRunning != tt.keep {
				t.Errorf("got shouldRun=%v shouldContinueRunning=%v, want %v %v", got.shouldRun, got.shouldContinueRunning, tt.run, tt.keep)
			}
		})
	}
}

func TestWithDaemonTolerationsReplacesSameKeyAndEffect(t *testing.T) {
	spec := &corev1.PodSpec{Tolerations: []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(5))},
		{Key: "mine", Operator: corev1.TolerationOpExists},
	}}
	got := withDaemonTolerations(spec)
	if len(got) != 1+len(daemonTolerations) {
		t.Fatalf("got %d tolerations, want %d: %v", len(got), 1+len(daemonTolerations), got)
	}
	for _, tol := range got {
		if tol.Key == corev1.TaintNodeNotReady && tol.TolerationSeconds != nil {
			t.Errorf("the template's bounded not-ready toleration was kept: %v", tol)
		}
	}
	if got[0].Key != "mine" {
		t.Errorf("the template's own toleration was lost: %v", got)
	}
}

func TestWithNodeAffinityTargetsOneNode(t *testing.T) {
	preferred := []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "k", Operator: corev1.NodeSelectorOpExists}},
	}}}
	in := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		}}},
		PreferredDuringSchedulingIgnoredDuringExecution: preferred,
	}}
	out := withNodeAffinity(in, "node-7")
	pod := &skiffcorev1.Pod{Spec: corev1.PodSpec{Affinity: out}}
	if got := targetNode(pod); got != "node-7" {
		t.Errorf("targetNode = %q, want node-7", got)
	}
	if terms := out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms; len(terms) != 1 || len(terms[0].MatchExpressions) != 0 {
		t.Errorf("required terms = %v, want only the metadata.name term", terms)
	}
	if len(out.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("preferred terms were lost")
	}
	if len(in.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions) != 1 {
		t.Errorf("the template's affinity was modified")
	}
	if got := targetNode(&skiffcorev1.Pod{Spec: corev1.PodSpec{NodeName: "bound", Affinity: out}}); got != "bound" {
		t.Errorf("a bound pod's target = %q, want its spec.nodeName", got)
	}
}
