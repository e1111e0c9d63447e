package daemonset

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// dpod is a daemon pod on node, created age seconds after t0, running the
// revision hash; ready pods are available.
func dpod(name, nodeName string, age int, hash string, ready bool) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(name),
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second)),
			Labels:            map[string]string{appsv1.ControllerRevisionHashLabelKey: hash},
		},
		Spec:   corev1.PodSpec{NodeName: nodeName},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	return p
}

func names(pods []*skiffcorev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func TestPlacement(t *testing.T) {
	spec := &corev1.PodSpec{NodeSelector: map[string]string{"run": "yes"}}
	spec.Tolerations = withDaemonTolerations(spec)
	yes := map[string]string{"run": "yes"}
	failed := dpod("failed", "a", 0, "h", false)
	failed.Status.Phase = corev1.PodFailed
	succeeded := dpod("succeeded", "a", 0, "h", false)
	succeeded.Status.Phase = corev1.PodSucceeded
	tests := []struct {
		name       string
		nodes      []*skiffcorev1.Node
		pods       []*skiffcorev1.Pod
		wantCreate []string
		wantRemove []string
		wantFailed []string
	}{
		{name: "eligible nodes without pods get one",
			nodes: []*skiffcorev1.Node{node("a", yes), node("b", yes), node("c", nil)}, wantCreate: []string{"a", "b"}},
		{name: "a node with its pod gets nothing",
			nodes: []*skiffcorev1.Node{node("a", yes)}, pods: []*skiffcorev1.Pod{dpod("p", "a", 0, "h", true)}},
		{name: "duplicates go, the oldest stays",
			nodes:      []*skiffcorev1.Node{node("a", yes)},
			pods:       []*skiffcorev1.Pod{dpod("young", "a", 9, "h", true), dpod("old", "a", 1, "h", true), dpod("mid", "a", 5, "h", true)},
			wantRemove: []string{"mid", "young"}},
		{name: "a node that no longer matches loses its pod",
			nodes: []*skiffcorev1.Node{node("a", nil)}, pods: []*skiffcorev1.Pod{dpod("p", "a", 0, "h", true)}, wantRemove: []string{"p"}},
		{name: "a vanished node's pod goes",
			nodes: []*skiffcorev1.Node{node("a", yes)},
			pods:  []*skiffcorev1.Pod{dpod("p", "a", 0, "h", true), dpod("q", "gone", 0, "h", true)}, wantRemove: []string{"q"}},
		{name: "an untolerated NoExecute taint evicts",
			nodes: []*skiffcorev1.Node{node("a", yes, taint("k", corev1.TaintEffectNoExecute))},
			pods:  []*skiffcorev1.Pod{dpod("p", "a", 0, "h", true)}, wantRemove: []string{"p"}},
		{name: "a NoSchedule taint keeps the pod there but creates none",
			nodes: []*skiffcorev1.Node{node("a", yes, taint("k", corev1.TaintEffectNoSchedule)), node("b", yes, taint("k", corev1.TaintEffectNoSchedule))},
			pods:  []*skiffcorev1.Pod{dpod("p", "a", 0, "h", true)}},
		{name: "a failed pod is to be killed; its replacement comes in the next sync",
			nodes: []*skiffcorev1.Node{node("a", yes)}, pods: []*skiffcorev1.Pod{failed}, wantFailed: []string{"failed"}},
		{name: "a failed pod next to a running one is to be killed, the running one stays",
			nodes: []*skiffcorev1.Node{node("a", yes)}, pods: []*skiffcorev1.Pod{failed, dpod("p", "a", 1, "h", true)}, wantFailed: []string{"failed"}},
		{name: "a failed pod on a node that may no longer run the daemon goes at once",
			nodes: []*skiffcorev1.Node{node("a", nil)}, pods: []*skiffcorev1.Pod{failed}, wantRemove: []string{"failed"}},
		{name: "a succeeded pod goes without back-off",
			nodes: []*skiffcorev1.Node{node("a", yes)}, pods: []*skiffcorev1.Pod{succeeded}, wantRemove: []string{"succeeded"}},
		{name: "a terminating pod holds its node: no replacement until it is gone",
			nodes: []*skiffcorev1.Node{node("a", yes)}, pods: []*skiffcorev1.Pod{terminating(dpod("t", "a", 0, "h", true))}},
		{name: "terminating pods are not deleted again, wherever they are",
			nodes: []*skiffcorev1.Node{node("a", nil)},
			pods: []*skiffcorev1.Pod{terminating(dpod("t", "a", 0, "h", true)), terminating(dpod("gone", "gone", 0, "h", true)),
				dpod("p", "a", 1, "h", true)},
			wantRemove: []string{"p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			byNode, nowhere := groupByNode(tt.pods)
			p := placement(spec, tt.nodes, byNode, nowhere, keepOldest)
			slices.Sort(p.createOn)
			if !slices.Equal(p.createOn, tt.wantCreate) {
				t.Errorf("createOn = %v, want %v", p.createOn, tt.wantCreate)
			}
			if got := names(p.remove); !slices.Equal(got, tt.wantRemove) {
				t.Errorf("remove = %v, want %v", got, tt.wantRemove)
			}
			if got := names(p.failed); !slices.Equal(got, tt.wantFailed) {
				t.Errorf("failed = %v, want %v", got, tt.wantFailed)
			}
		})
	}
}

func TestCalculateStatus(t *testing.T) {
	ds := &skiffappsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 4},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: map[string]string{"run": "yes"}}}}}
	yes := map[string]string{"run": "yes"}
	nodes := []*skiffcorev1.Node{node("a", yes), node("b", yes), node("c", yes), node("d", nil)}
	byNode, _ := groupByNode([]*skiffcorev1.Pod{
		dpod("pa", "a", 0, "new", true), dpod("pb", "b", 0, "old", false), dpod("pd", "d", 0, "new", true),
	})
	got := calculateStatus(ds, daemonPodSpec(ds), nodes, byNode, "new", t0)
	want := appsv1.DaemonSetStatus{ObservedGeneration: 4, DesiredNumberScheduled: 3, CurrentNumberScheduled: 2,
		NumberMisscheduled: 1, NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1, NumberUnavailable: 2}
	if got.String() != want.String() {
		t.Errorf("status =\n%v\nwant\n%v", got.String(), want.String())
	}

	// A terminating pod still runs on its node: it counts, as upstream.
	// So does a bound pod before an older unbound one.
	unbound := dpod("pc-new", "", 0, "new", true)
	unbound.Spec.Affinity = withNodeAffinity(nil, "c")
	byNode, _ = groupByNode([]*skiffcorev1.Pod{
		dpod("pa", "a", 0, "new", true), terminating(dpod("pb", "b", 0, "old", true)),
		unbound, dpod("pc-old", "c", 5, "old", false),
	})
	got = calculateStatus(ds, daemonPodSpec(ds), nodes, byNode, "new", t0)
	want = appsv1.DaemonSetStatus{ObservedGeneration: 4, DesiredNumberScheduled: 3, CurrentNumberScheduled: 3,
		NumberReady: 2, NumberAvailable: 2, UpdatedNumberScheduled: 1, NumberUnavailable: 1}
	if got.String() != want.String() {
		t.Errorf("status =\n%v\nwant\n%v", got.String(), want.String())
	}
}

func TestRollingUpdateVictims(t *testing.T) {
	nodes := []*skiffcorev1.Node{node("a", nil), node("b", nil), node("c", nil), node("d", nil)}
	pct := intstr.FromString("50%")
	tests := []struct {
		name       string
		strategy   appsv1.DaemonSetUpdateStrategy
		pods       []*skiffcorev1.Pod
		want       []string
		wantCreate []string
	}{
		{name: "one at a time by default",
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("b", "b", 0, "old", true), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "old", true)},
			want: []string{"a"}},
		{name: "none while a node is without an available daemon",
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "new", false), dpod("b", "b", 0, "old", true), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "old", true)}},
		{name: "a node whose pod is still terminating is without an available daemon",
			pods: []*skiffcorev1.Pod{terminating(dpod("a", "a", 0, "old", true)), dpod("b", "b", 0, "old", true), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "old", true)}},
		{name: "old unavailable pods always go",
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "old", false), dpod("b", "b", 0, "old", false), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "new", true)},
			want: []string{"a", "b"}},
		{name: "maxUnavailable as a percentage",
			strategy: appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &pct}},
			pods:     []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("b", "b", 0, "old", true), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "old", true)},
			want:     []string{"a", "b"}},
		{name: "OnDelete never deletes",
			strategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			pods:     []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("b", "b", 0, "old", false)}},
		{name: "surge: new pods next to old available ones, within maxSurge",
			strategy:   surge(2),
			pods:       []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("b", "b", 0, "old", true), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "old", true)},
			wantCreate: []string{"a", "b"}},
		{name: "surge: an old pod goes once the new one beside it is available; a pending new pod holds the budget",
			strategy: surge(1),
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("a2", "a", 5, "new", true),
				dpod("b", "b", 0, "old", true), dpod("b2", "b", 5, "new", false), dpod("c", "c", 0, "old", true), dpod("d", "d", 0, "new", true)},
			want: []string{"a"}},
		{name: "surge: a node whose old pod is unavailable gets its new pod outside the budget",
			strategy: surge(1),
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "old", true), dpod("a2", "a", 5, "new", false),
				dpod("b", "b", 0, "old", false), dpod("c", "c", 0, "new", true), dpod("d", "d", 0, "new", true)},
			wantCreate: []string{"b"}},
		{name: "all up to date",
			pods: []*skiffcorev1.Pod{dpod("a", "a", 0, "new", true), dpod("b", "b", 0, "new", true), dpod("c", "c", 0, "new", true), dpod("d", "d", 0, "new", true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := &skiffappsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: tt.strategy}}
			byNode, _ := groupByNode(tt.pods)
			createOn, victims := rollingUpdate(updateContext{ds: ds, spec: daemonPodSpec(ds), nodes: nodes, byNode: byNode, hash: "new", now: t0})
			if got := names(victims); !slices.Equal(got, tt.want) {
				t.Errorf("victims = %v, want %v", got, tt.want)
			}
			if !slices.Equal(createOn, tt.wantCreate) {
				t.Errorf("createOn = %v, want %v", createOn, tt.wantCreate)
			}
		})
	}
}

func TestTemplateHash(t *testing.T) {
	a := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "one"}}}}
	b := *a.DeepCopy()
	if templateHash(&a, nil) != templateHash(&b, nil) {
		t.Error("equal templates hash differently")
	}
	b.Spec.Containers[0].Image = "two"
	if templateHash(&a, nil) == templateHash(&b, nil) {
		t.Error("different templates hash the same")
	}
	one := int32(1)
	if templateHash(&a, nil) == templateHash(&a, &one) {
		t.Error("the collision count does not change the hash")
	}
}

func surge(n int) appsv1.DaemonSetUpdateStrategy {
	zero, max := intstr.FromInt32(0), intstr.FromInt(n)
	return appsv1.DaemonSetUpdateStrategy{RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &zero, MaxSurge: &max}}
}

func TestKeepDuringSurge(t *testing.T) {
	ds := &skiffappsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: surge(1)}}
	u := updateContext{ds: ds, hash: "new", now: t0}
	tests := []struct {
		name string
		pods []*skiffcorev1.Pod
		want []string
	}{
		{name: "old and pending new both stay", pods: []*skiffcorev1.Pod{dpod("old", "a", 0, "old", true), dpod("new", "a", 1, "new", false)}, want: []string{"new", "old"}},
		{name: "an available new pod stays alone", pods: []*skiffcorev1.Pod{dpod("old", "a", 0, "old", true), dpod("new", "a", 1, "new", true)}, want: []string{"new"}},
		{name: "duplicate new pods: the oldest stays", pods: []*skiffcorev1.Pod{dpod("new1", "a", 0, "new", true), dpod("new2", "a", 1, "new", true)}, want: []string{"new1"}},
		{name: "duplicate old pods: the oldest stays", pods: []*skiffcorev1.Pod{dpod("old1", "a", 0, "old", true), dpod("old2", "a", 1, "old", true)}, want: []string{"old1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(u.keepDuringSurge(tt.pods)); !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMaxSurge(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt(n); return &v }
	tests := []struct {
		surge   *intstr.IntOrString
		desired int
		want    int
	}{
		{nil, 10, 0}, {num(0), 10, 0}, {num(3), 10, 3}, {pct("25%"), 10, 3}, {pct("1%"), 10, 1}, {pct("0%"), 10, 0},
	}
	for _, tt := range tests {
		ds := &skiffappsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: tt.surge}}}}
		if got := maxSurge(ds, tt.desired); got != tt.want {
			t.Errorf("maxSurge(%v of %d) = %d, want %d", tt.surge, tt.desired, got, tt.want)
		}
	}
}

// terminating marks pod as being deleted.
func terminating(pod *skiffcorev1.Pod) *skiffcorev1.Pod {
	pod.DeletionTimestamp = &metav1.Time{Time: t0}
	return pod
}
