package scheduler

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The scheduler's metrics, under upstream's names and labels so that
// kube-scheduler dashboards and alerts read skiff's too. They live on
// controller-runtime's registry, which the manager serves on /metrics next
// to the reconcile and work queue metrics.
//
// An attempt is one scheduling cycle of one pod, from its leaving the
// queue to its binding written (scheduled), to its finding no node
// (unschedulable), or to its binding refused (error), as upstream counts
// it.
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

var (
	scheduleAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "scheduler",
		Name:      "schedule_attempts_total",
		Help:      "Scheduling attempts by result: scheduled (bound), unschedulable (no node fits) or error (the binding failed).",
	}, []string{"result", "profile"})

	schedulingAttemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "scheduler",
		Name:      "scheduling_attempt_duration_seconds",
		Help:      "How long scheduling attempts took, from the pod leaving the queue to its binding written or its failure found, by result.",
		// upstream's buckets: 1ms to 16s
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"result", "profile"})

	pendingPodsDesc = prometheus.NewDesc("scheduler_pending_pods",
		"Pods waiting for a node, by where they wait: active (next in line), backoff (after a failed attempt) or unschedulable (parked until the cluster changes).",
		[]string{"queue"}, nil)
)

// pendingQueue is the queue of the scheduler that runs, read on each
// scrape, so that the gauge is exact without a write on every queue move.
var pendingQueue atomic.Pointer[Queue]

func init() {
	metrics.Registry.MustRegister(scheduleAttempts, schedulingAttemptDuration, pendingPodsCollector{})
	// Every result is exported from the start, at zero, so that a rate
	// over the series works before the first failure.
	for _, result := range []string{resultScheduled, resultUnschedulable, resultError} {
		scheduleAttempts.WithLabelValues(result, SchedulerName)
		schedulingAttemptDuration.WithLabelValues(result, SchedulerName)
	}
}

// observeAttempt records one scheduling attempt that began at start.
func observeAttempt(result string, start time.Time) {
	scheduleAttempts.WithLabelValues(result, SchedulerName).Inc()
	schedulingAttemptDuration.WithLabelValues(result, SchedulerName).Observe(time.Since(start).Seconds())
}

// pendingPodsCollector reports scheduler_pending_pods from the running
// scheduler's queue; nothing while no scheduler runs (a manager that is
// not the leader).
type pendingPodsCollector struct{}

func (pendingPodsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- pendingPodsDesc }

func (pendingPodsCollector) Collect(ch chan<- prometheus.Metric) {
	q := pendingQueue.Load()
	if q == nil {
		return
	}
	c := q.Counts()
	for _, g := range []struct {
		queue string
		n     int
	}{{"active", c.Active}, {"backoff", c.Backoff}, {"unschedulable", c.Unschedulable}} {
		ch <- prometheus.MustNewConstMetric(pendingPodsDesc, prometheus.GaugeValue, float64(g.n), g.queue)
	}
}
