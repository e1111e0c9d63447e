package nodeagent

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestPodStartTracker checks which passes count as a pod's start: only the
// first that turns a pending pod Running, for a pod the agent saw.
func TestPodStartTracker(t *testing.T) {
	created := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	seen := created.Add(2 * time.Second)
	running := created.Add(5 * time.Second)
	type pass struct{ from, to corev1.PodPhase }
	cases := []struct {
		name   string
		unseen bool
		passes []pass
		// want is the samples observed: the start and SLI latencies.
		want []float64
	}{
		{"bound, then running", false, []pass{{"", corev1.PodRunning}}, []float64{3, 5}},
		{"pending, then running", false, []pass{{corev1.PodPending, corev1.PodPending}, {corev1.PodPending, corev1.PodRunning}}, []float64{3, 5}},
		{"a retried write counts once", false, []pass{{corev1.PodPending, corev1.PodRunning}, {corev1.PodPending, corev1.PodRunning}}, []float64{3, 5}},
		{"running when the agent restarted", false, []pass{{corev1.PodRunning, corev1.PodRunning}}, nil},
		{"never runs", false, []pass{{"", corev1.PodPending}, {corev1.PodPending, corev1.PodFailed}}, nil},
		{"finished pods do not start again", false, []pass{{corev1.PodSucceeded, corev1.PodRunning}}, nil},
		{"a pod the agent never saw", true, []pass{{corev1.PodPending, corev1.PodRunning}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			duration, sli := testHistogram(), testHistogram()
			tr := newPodStartTracker()
			tr.duration, tr.sli = duration, sli
			pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1", CreationTimestamp: metav1.NewTime(created)}}
			if !tc.unseen {
				tr.seen(pod.UID, seen)
				tr.seen(pod.UID, running) // only the first sighting counts
			}
			for _, p := range tc.passes {
				pod.Status.Phase = p.from
				tr.synced(pod, &corev1.PodStatus{Phase: p.to}, running)
			}
			got := []float64{}
			for _, h := range []prometheus.Histogram{duration, sli} {
				m := &dto.Metric{}
				if err := h.Write(m); err != nil {
					t.Fatal(err)
				}
				if n := m.GetHistogram().GetSampleCount(); n > 1 {
					t.Fatalf("%d samples, want at most one per pod", n)
				} else if n == 1 {
					got = append(got, m.GetHistogram().GetSampleSum())
				}
			}
			if len(got) != len(tc.want) || (len(got) == 2 && (got[0] != tc.want[0] || got[1] != tc.want[1])) {
				t.Errorf("observed %v, want %v", got, tc.want)
			}
			tr.forget(pod.UID)
			if len(tr.pods) != 0 {
				t.Errorf("forget left %d pods", len(tr.pods))
			}
		})
	}
}

func testHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test", Buckets: podStartBuckets})
}
