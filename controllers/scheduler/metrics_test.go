package scheduler

import (
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"skiff.dev/skiff/internal/testenv"
)

// attempts reads, from the manager's registry, the attempts counted with
// result and how many durations the histogram holds for it.
func attempts(t *testing.T, result string) (count, durations uint64) {
	t.Helper()
	labels := map[string]string{"result": result, "profile": SchedulerName}
	if m := gathered(t, "scheduler_schedule_attempts_total", labels); m != nil {
		count = uint64(m.GetCounter().GetValue())
	}
	if m := gathered(t, "scheduler_scheduling_attempt_duration_seconds", labels); m != nil {
		durations = m.GetHistogram().GetSampleCount()
	}
	return count, durations
}

// gathered is the series of the family name whose labels include labels,
// as a scrape would see it; nil when there is none.
func gathered(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the registry: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			return m
		}
	}
	return nil
}

// TestAttemptMetrics schedules one pod that fits and one that does not,
// and checks that each attempt is counted and timed under its result, and
// that the pod that fits nowhere shows as pending in the unschedulable
// queue.
func TestAttemptMetrics(t *testing.T) {
	scheduled0, scheduledTimed0 := attempts(t, resultScheduled)
	unschedulable0, unschedulableTimed0 := attempts(t, resultUnschedulable)

	c := newCluster(t, Config{})
	c.node("n1", "1", 110)
	c.pod("fits", "500m")
	c.pod("too-big", "2")
	c.boundTo("fits")
	c.event("too-big", "FailedScheduling")

	testenv.Eventually(t, 30*time.Second, func() error {
		scheduled, scheduledTimed := attempts(t, resultScheduled)
		unschedulable, unschedulableTimed := attempts(t, resultUnschedulable)
		switch {
		case scheduled < scheduled0+1 || scheduledTimed < scheduledTimed0+1:
			return fmt.Errorf("scheduled: %d attempts and %d durations, want at least %d and %d", scheduled, scheduledTimed, scheduled0+1, scheduledTimed0+1)
		case unschedulable < unschedulable0+1 || unschedulableTimed < unschedulableTimed0+1:
			return fmt.Errorf("unschedulable: %d attempts and %d durations, want at least %d and %d", unschedulable, unschedulableTimed, unschedulable0+1, unschedulableTimed0+1)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		m := gathered(t, "scheduler_pending_pods", map[string]string{"queue": "unschedulable"})
		if m == nil || m.GetGauge().GetValue() < 1 {
			return fmt.Errorf("scheduler_pending_pods{queue=unschedulable} is %v, want at least 1 (too-big)", m)
		}
		return nil
	})
	if m := gathered(t, "scheduler_schedule_attempts_total", map[string]string{"result": resultError}); m == nil {
		t.Errorf("scheduler_schedule_attempts_total{result=error} is not exported before the first error")
	}
}
