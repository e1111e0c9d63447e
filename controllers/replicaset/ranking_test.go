package replicaset

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// rankPod builds a pod for the ranking tables.
type rankPod struct {
	name       string
	node       string
	phase      corev1.PodPhase
	readySince time.Duration // 0: not ready; otherwise ready for this long
	readyZero  bool          // ready, with no transition time recorded
	restarts   []int32
	age        time.Duration
}

var rankNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func (r rankPod) pod() *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: r.name, CreationTimestamp: metav1.NewTime(rankNow.Add(-r.age))},
		Spec:       corev1.PodSpec{NodeName: r.node},
		Status:     corev1.PodStatus{Phase: r.phase},
	}
	if r.readySince > 0 || r.readyZero {
		c := corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue}
		if !r.readyZero {
			c.LastTransitionTime = metav1.NewTime(rankNow.Add(-r.readySince))
		}
		p.Status.Conditions = append(p.Status.Conditions, c)
	}
	for i, n := range r.restarts {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: string(rune('a' + i)), RestartCount: n})
	}
	return p
}

func TestCompareForDeletion(t *testing.T) {
	running := func(name string) rankPod {
		return rankPod{name: name, node: "n1", phase: corev1.PodRunning, readySince: time.Hour, age: 2 * time.Hour}
	}
	with := func(p rankPod, change func(*rankPod)) rankPod { change(&p); return p }

	cases := []struct {
		name        string
		first, then rankPod // first must be deleted before then
	}{
		{"unassigned before assigned",
			with(running("a"), func(p *rankPod) { p.node = ""; p.phase = corev1.PodRunning }), running("b")},
		{"unassigned wins over every later rule",
			rankPod{name: "a", phase: corev1.PodRunning, readySince: time.Hour, age: time.Hour * 10},
			rankPod{name: "b", node: "n1", phase: corev1.PodPending, restarts: []int32{9}}},
		{"pending before unknown",
			with(running("a"), func(p *rankPod) { p.phase = corev1.PodPending }), with(running("b"), func(p *rankPod) { p.phase = corev1.PodUnknown })},
		{"unknown before running",
			with(running("a"), func(p *rankPod) { p.phase = corev1.PodUnknown }), running("b")},
		{"not ready before ready",
			with(running("a"), func(p *rankPod) { p.readySince = 0 }), running("b")},
		{"ready for less time before longer",
			with(running("a"), func(p *rankPod) { p.readySince = time.Minute }), running("b")},
		{"an unknown ready time counts as the shortest",
			with(running("a"), func(p *rankPod) { p.readyZero = true; p.readySince = 0 }), running("b")},
		{"more restarts before fewer",
			with(running("a"), func(p *rankPod) { p.restarts = []int32{0, 4} }), with(running("b"), func(p *rankPod) { p.restarts = []int32{3, 3} })},
		{"newer before older",
			with(running("a"), func(p *rankPod) { p.age = time.Minute }), running("b")},
		{"same everything: by name",
			running("a"), running("b")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tc.first.pod(), tc.then.pod()
			if c := compareForDeletion(a, b); c >= 0 {
				t.Errorf("compare(%s, %s) = %d, want < 0", a.Name, b.Name, c)
			}
			if c := compareForDeletion(b, a); c <= 0 {
				t.Errorf("compare(%s, %s) = %d, want > 0", b.Name, a.Name, c)
			}
		})
	}
}

func TestPodsToDelete(t *testing.T) {
	pods := []*skiffcorev1.Pod{
		rankPod{name: "ready-old", node: "n1", phase: corev1.PodRunning, readySince: time.Hour, age: 2 * time.Hour}.pod(),
		rankPod{name: "not-ready", node: "n1", phase: corev1.PodRunning, age: time.Hour}.pod(),
		rankPod{name: "ready-new", node: "n1", phase: corev1.PodRunning, readySince: time.Minute, age: time.Hour}.pod(),
		rankPod{name: "unscheduled", phase: corev1.PodPending, age: 3 * time.Hour}.pod(),
	}
	cases := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, []string{"unscheduled"}},
		{2, []string{"unscheduled", "not-ready"}},
		{3, []string{"unscheduled", "not-ready", "ready-new"}},
		{9, []string{"unscheduled", "not-ready", "ready-new", "ready-old"}},
	}
	for _, tc := range cases {
		var got []string
		for _, p := range podsToDelete(pods, tc.n) {
			got = append(got, p.Name)
		}
		if !equalStrings(got, tc.want) {
			t.Errorf("podsToDelete(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if pods[0].Name != "ready-old" {
		t.Errorf("podsToDelete reordered its input: first is now %s", pods[0].Name)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
