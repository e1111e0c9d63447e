package job

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func pod(uid string, phase corev1.PodPhase, finalizer, deleted bool, index string) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid)}}
	p.Status.Phase = phase
	if finalizer {
		p.Finalizers = []string{trackingFinalizer}
	}
	if deleted {
		p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	}
	if index != "" {
		p.Annotations = map[string]string{labelCompletionIndex: index}
	}
	return p
}

func uids(pods []*skiffcorev1.Pod) []types.UID {
	var out []types.UID
	for _, p := range pods {
		out = append(out, p.UID)
	}
	return out
}

func TestRecordFinished(t *testing.T) {
	cases := []struct {
		name          string
		status        batchv1.JobStatus
		pods          []*skiffcorev1.Pod
		pending       map[types.UID]bool
		finishing     bool
		indexed       bool
		wantRelease   []types.UID
		wantSucceeded []types.UID
		wantFailed    []types.UID
		wantIndexes   string
	}{{
		name: "running pods are left alone",
		pods: []*skiffcorev1.Pod{pod("a", corev1.PodRunning, true, false, "")},
	}, {
		name:          "finished pods are recorded and released",
		pods:          []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, true, false, ""), pod("b", corev1.PodFailed, true, false, "")},
		wantRelease:   []types.UID{"a", "b"},
		wantSucceeded: []types.UID{"a"},
		wantFailed:    []types.UID{"b"},
	}, {
		name: "pods without the finalizer were counted already",
		pods: []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, false, false, "")},
	}, {
		name:    "a release in flight is not counted twice",
		pods:    []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, true, false, "")},
		pending: map[types.UID]bool{"a": true},
	}, {
		name:          "an already recorded pod is released again but not recorded twice",
		status:        batchv1.JobStatus{UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{"a"}}},
		pods:          []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, true, false, "")},
		wantRelease:   []types.UID{"a"},
		wantSucceeded: []types.UID{"a"},
	}, {
		name:          "a deleted finished pod still counts",
		pods:          []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, true, true, "")},
		wantRelease:   []types.UID{"a"},
		wantSucceeded: []types.UID{"a"},
	}, {
		name:        "a pod deleted while running is released uncounted",
		pods:        []*skiffcorev1.Pod{pod("a", corev1.PodRunning, true, true, "")},
		wantRelease: []types.UID{"a"},
	}, {
		name:        "once the job is finishing, unfinished pods count as failed",
		pods:        []*skiffcorev1.Pod{pod("a", corev1.PodRunning, true, true, "")},
		finishing:   true,
		wantRelease: []types.UID{"a"},
		wantFailed:  []types.UID{"a"},
	}, {
		name:          "indexed successes complete their index",
		status:        batchv1.JobStatus{CompletedIndexes: "0"},
		pods:          []*skiffcorev1.Pod{pod("a", corev1.PodSucceeded, true, false, "1"), pod("b", corev1.PodSucceeded, true, false, "3"), pod("c", corev1.PodFailed, true, false, "2")},
		indexed:       true,
		wantRelease:   []types.UID{"a", "b", "c"},
		wantSucceeded: []types.UID{"a", "b"},
		wantFailed:    []types.UID{"c"},
		wantIndexes:   "0-1,3",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status := tc.status.DeepCopy()
			release, _ := recordFinished(status, tc.pods, tc.pending, tc.finishing, tc.indexed, 4, nil, nil)
			if got := uids(release); !equalUIDs(got, tc.wantRelease) {
				t.Errorf("release = %v, want %v", got, tc.wantRelease)
			}
			u := status.UncountedTerminatedPods
			if !equalUIDs(u.Succeeded, tc.wantSucceeded) || !equalUIDs(u.Failed, tc.wantFailed) {
				t.Errorf("uncounted = %+v, want succeeded %v failed %v", u, tc.wantSucceeded, tc.wantFailed)
			}
			if status.CompletedIndexes != tc.wantIndexes {
				t.Errorf("completedIndexes = %q, want %q", status.CompletedIndexes, tc.wantIndexes)
			}
		})
	}
}

func equalUIDs(a, b []types.UID) bool {
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

func TestCountReleased(t *testing.T) {
	status := &batchv1.JobStatus{
		Succeeded: 2, Failed: 1,
		UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{
			Succeeded: []types.UID{"s1", "s2"},
			Failed:    []types.UID{"f1", "f2"},
		},
	}
	held := map[types.UID]bool{"s2": true, "f2": true}
	newFailed := countReleased(status, func(uid types.UID) bool { return held[uid] })
	if status.Succeeded != 3 || status.Failed != 2 || newFailed != 1 {
		t.Errorf("succeeded=%d failed=%d newFailed=%d, want 3 2 1", status.Succeeded, status.Failed, newFailed)
	}
	u := status.UncountedTerminatedPods
	if !equalUIDs(u.Succeeded, []types.UID{"s2"}) || !equalUIDs(u.Failed, []types.UID{"f2"}) {
		t.Errorf("still uncounted = %+v, want the held pods only", u)
	}
	// Counting again changes nothing: a pod moves once.
	countReleased(status, func(uid types.UID) bool { return held[uid] })
	if status.Succeeded != 3 || status.Failed != 2 {
		t.Errorf("second count changed the counters: %d %d", status.Succeeded, status.Failed)
	}
}

func TestIndexSetRoundTrip(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"", ""},
		{"0", "0"},
		{"0,1,2", "0-2"},
		{"3,1,0", "0-1,3"},
		{"0-2,5-6,9", "0-2,5-6"}, // 9 is beyond completions
		{"x,2", "2"},
	}
	for _, tc := range cases {
		if got := parseIndexes(tc.in, 8).String(); got != tc.want {
			t.Errorf("parseIndexes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second},
		{6, 320 * time.Second}, {7, 6 * time.Minute}, {100, 6 * time.Minute},
	}
	for _, tc := range cases {
		if got := backoffDelay(tc.failures, defaultBackoffBase, defaultBackoffMax); got != tc.want {
			t.Errorf("backoffDelay(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

func TestWantActive(t *testing.T) {
	cases := []struct {
		name                           string
		completions                    *int32
		parallelism, succeeded, active int
		want                           int
	}{
		{"parallelism bounds", ptr.To[int32](10), 3, 0, 0, 3},
		{"remaining completions bound", ptr.To[int32](5), 3, 4, 1, 1},
		{"done", ptr.To[int32](5), 3, 5, 0, 0},
		{"no completions: parallelism until a success", nil, 4, 0, 2, 4},
		{"no completions: no new pod after a success", nil, 4, 1, 2, 2},
	}
	for _, tc := range cases {
		if got := wantActive(tc.completions, tc.parallelism, tc.succeeded, tc.active); got != tc.want {
			t.Errorf("%s: wantActive = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestMissingIndexes(t *testing.T) {
	active := []*skiffcorev1.Pod{pod("a", corev1.PodRunning, true, false, "0")}
	completed := indexSet{1: true}
	got := missingIndexes(active, completed, 5, 3)
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Errorf("missingIndexes = %v, want [2 3]", got)
	}
}
