package daemonset

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestStaleRevisions(t *testing.T) {
	rev := func(hash string, n int64) appsv1.ControllerRevision {
		return appsv1.ControllerRevision{
			ObjectMeta: metav1.ObjectMeta{Name: hash, Labels: map[string]string{appsv1.ControllerRevisionHashLabelKey: hash}},
			Revision:   n,
		}
	}
	revs := []appsv1.ControllerRevision{rev("r3", 3), rev("r1", 1), rev("r5", 5), rev("r2", 2), rev("r4", 4)}
	one, zero := int32(1), int32(0)
	tests := []struct {
		name  string
		limit *int32
		inUse map[string]bool
		want  []string
	}{
		{name: "within the default limit", want: nil},
		{name: "limit 1 keeps the newest old one", limit: &one, want: []string{"r1", "r2", "r3"}},
		{name: "revisions still run by a pod stay", limit: &zero, inUse: map[string]bool{"r1": true}, want: []string{"r2", "r3", "r4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range staleRevisions(revs, tt.limit, "r5", tt.inUse) {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("stale = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextAvailable(t *testing.T) {
	readySince := func(name string, at time.Time) *skiffcorev1.Pod {
		p := dpod(name, "a", 0, "h", true)
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(at)
		return p
	}
	byNode := map[string][]*skiffcorev1.Pod{
		"a": {readySince("long-ready", t0.Add(-time.Hour))},
		"b": {readySince("ready-2s-ago", t0.Add(-2*time.Second)), dpod("not-ready", "b", 0, "h", false)},
	}
	if _, ok := nextAvailable(byNode, 0, t0); ok {
		t.Error("a requeue without minReadySeconds")
	}
	if wait, ok := nextAvailable(byNode, 10, t0); !ok || wait != 9*time.Second {
		t.Errorf("nextAvailable = %v %v, want 9s (8s until available, plus 1s)", wait, ok)
	}
	if _, ok := nextAvailable(map[string][]*skiffcorev1.Pod{"a": byNode["a"]}, 10, t0); ok {
		t.Error("a requeue when every ready pod is available")
	}
}
