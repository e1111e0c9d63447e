package nodeagent

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The agent's pod start latencies, under the kubelet's names so that the
// kubelet's dashboards and the pod startup SLO read skiff's too. They live
// on controller-runtime's registry, which the agent serves on /metrics
// (--metrics-bind-address) next to its reconcile and work queue metrics.
var (
	// podStartBuckets run from half a second to an hour, the kubelet's
	// boundaries, so that quantiles compare with a kubelet's.
	podStartBuckets = []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600}

	podStartDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Subsystem: "kubelet",
		Name:      "pod_start_duration_seconds",
		Help:      "Seconds from the agent first seeing a pod to the pod running (phase Running).",
		Buckets:   podStartBuckets,
	})
	// Upstream's SLI leaves out the time spent pulling images; skiff's
	// images are imported on the node, never pulled, so creation to
	// running is the whole of it.
	podStartSLIDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Subsystem: "kubelet",
		Name:      "pod_start_sli_duration_seconds",
		Help:      "Seconds from a pod's creation to all its containers started (phase Running), as the agent sees it.",
		Buckets:   podStartBuckets,
	})
)

func init() {
	metrics.Registry.MustRegister(podStartDuration, podStartSLIDuration)
}

// podStartTracker remembers when the agent first saw each pod it runs, and
// observes the start latencies once per pod, when its status first turns
// Running.
type podStartTracker struct {
	// duration and sli are the two histograms; tests pass their own.
	duration, sli prometheus.Observer

	mu   sync.Mutex
	pods map[types.UID]*podStart
}

type podStart struct {
	firstSeen time.Time
	observed  bool
}

func newPodStartTracker() *podStartTracker {
	return &podStartTracker{duration: podStartDuration, sli: podStartSLIDuration, pods: map[types.UID]*podStart{}}
}

// seen records that the agent is syncing the pod at now; only the first
// call for a pod counts.
func (t *podStartTracker) seen(uid types.UID, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pods[uid]; !ok {
		t.pods[uid] = &podStart{firstSeen: now}
	}
}

// synced observes the latencies of a pod whose status goes from pending
// (or none) to running in this pass. A pod that was already running when
// the agent (re)started is not a start, and a status write that is retried
// counts once.
func (t *podStartTracker) synced(pod *skiffcorev1.Pod, status *corev1.PodStatus, now time.Time) {
	if status.Phase != corev1.PodRunning || (pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending) {
		return
	}
	t.mu.Lock()
	s, ok := t.pods[pod.UID]
	if !ok || s.observed {
		t.mu.Unlock()
		return
	}
	s.observed = true
	t.mu.Unlock()
	t.duration.Observe(now.Sub(s.firstSeen).Seconds())
	t.sli.Observe(now.Sub(pod.CreationTimestamp.Time).Seconds())
}

// forget drops a pod the agent no longer runs.
func (t *podStartTracker) forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, uid)
}
