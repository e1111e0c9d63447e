package nodes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// testPod is a pod of namespace ns named name, controlled by a kind
// ("" for none), with an emptyDir when local, in phase.
func testPod(name, controller string, local bool, phase corev1.PodPhase) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: corev1.PodStatus{Phase: phase}}
	if controller != "" {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps.skiff.dev/v1", Kind: controller, Name: "owner", UID: "u", Controller: ptr.To(true)}}
	}
	if local {
		p.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	return p
}

// TestPlanDrain checks kubectl drain's rules on a node's pods: what is
// deleted, what is skipped with a warning, and what refuses the drain.
func TestPlanDrain(t *testing.T) {
	rs := testPod("web", "ReplicaSet", false, corev1.PodRunning)
	ds := testPod("agent", "DaemonSet", false, corev1.PodRunning)
	dsLocal := testPod("agent-cache", "DaemonSet", true, corev1.PodRunning)
	bare := testPod("bare", "", false, corev1.PodRunning)
	local := testPod("cache", "StatefulSet", true, corev1.PodRunning)
	bareLocal := testPod("scratch", "", true, corev1.PodPending)
	doneBare := testPod("done", "", true, corev1.PodSucceeded)
	doneDS := testPod("agent-done", "DaemonSet", false, corev1.PodFailed)

	cases := []struct {
		name     string
		pods     []*skiffcorev1.Pod
		rules    drainRules
		delete   string
		warnings []string
		refusals []string
	}{
		{"managed pods go", []*skiffcorev1.Pod{rs, local}, drainRules{DeleteEmptyDirData: true}, "ns/web, ns/cache",
			[]string{"deleting Pods with local storage: ns/cache"}, nil},
		{"daemonset pods refuse", []*skiffcorev1.Pod{rs, ds}, drainRules{}, "ns/web", nil,
			[]string{"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/agent"}},
		{"daemonset pods stay, even with local data", []*skiffcorev1.Pod{ds, dsLocal, rs}, drainRules{IgnoreDaemonSets: true}, "ns/web",
			[]string{"ignoring DaemonSet-managed Pods: ns/agent, ns/agent-cache"}, nil},
		{"every refusal at once", []*skiffcorev1.Pod{ds, bare, local, bareLocal}, drainRules{}, "", nil, []string{
			"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): ns/agent",
			"cannot delete Pods with local storage (use --delete-emptydir-data to override): ns/cache, ns/scratch",
			"cannot delete Pods that declare no controller (use --force to override): ns/bare",
		}},
		{"forced", []*skiffcorev1.Pod{bare, bareLocal}, drainRules{Force: true, DeleteEmptyDirData: true}, "ns/bare, ns/scratch", []string{
			"deleting Pods with local storage: ns/scratch",
			"deleting Pods that declare no controller: ns/bare, ns/scratch",
		}, nil},
		{"finished pods always go", []*skiffcorev1.Pod{doneBare, doneDS}, drainRules{}, "ns/done, ns/agent-done", nil, nil},
		{"no pods", nil, drainRules{}, "", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := planDrain(c.pods, c.rules)
			if got := podNames(plan.Delete); got != c.delete {
				t.Errorf("deletes %q, want %q", got, c.delete)
			}
			if got, want := strings.Join(plan.Warnings, "\n"), strings.Join(c.warnings, "\n"); got != want {
				t.Errorf("warnings:\n%s\nwant:\n%s", got, want)
			}
			if got, want := strings.Join(plan.Refusals, "\n"), strings.Join(c.refusals, "\n"); got != want {
				t.Errorf("refusals:\n%s\nwant:\n%s", got, want)
			}
			if (plan.refusal() != nil) != (len(c.refusals) > 0) {
				t.Errorf("refusal() = %v with refusals %v", plan.refusal(), c.refusals)
			}
		})
	}
	if err := planDrain([]*skiffcorev1.Pod{ds, bare}, drainRules{}).refusal(); err == nil || !strings.HasPrefix(err.Error(), "[cannot delete DaemonSet") {
		t.Errorf("two refusals read %v, want kubectl's [a, b]", err)
	}
}
