package nodeagent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
	"skiff.dev/skiff/nodeagent/simulated"
)

// TestPodStartLatencyIsServed runs a pod whose containers take two seconds
// to start on an agent that serves /metrics, and checks that each start
// histogram gets exactly one sample of at least those two seconds, that
// no later pass adds another, and that /metrics serves the histograms with
// controller-runtime's reconcile metrics.
func TestPodStartLatencyIsServed(t *testing.T) {
	const startDelay = 2 * time.Second
	opts := hostOptions(simulated.Options{StartDelay: startDelay}, simNode("metrics-0", "10.200.9.1"))
	ports, err := uptest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	opts.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", ports[0])
	startHost(t, opts)
	waitNodeReady(t, "metrics-0")

	names := []string{"kubelet_pod_start_duration_seconds", "kubelet_pod_start_sli_duration_seconds"}
	before := map[string]histogramSample{}
	for _, name := range names {
		before[name] = gatherHistogram(t, name)
	}
	pod := newPod("timed", "metrics-0", corev1.RestartPolicyAlways)
	if err := env.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	waitPod(t, pod, func(p *skiffcorev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s, want Running", p.Status.Phase)
		}
		return nil
	})
	// A few more passes (the node's status, the readiness) must not count
	// the start again.
	time.Sleep(2 * time.Second)
	for _, name := range names {
		got := gatherHistogram(t, name)
		count, sum := got.count-before[name].count, got.sum-before[name].sum
		if count != 1 || sum < startDelay.Seconds() {
			t.Errorf("%s got %d samples summing to %.2fs, want one of at least %s", name, count, sum, startDelay)
		}
	}

	testenv.Eventually(t, 30*time.Second, func() error {
		missing, err := testenv.MissingSeries("http://"+opts.MetricsBindAddress+"/metrics", append(names, "controller_runtime_reconcile_total")...)
		if len(missing) > 0 {
			return fmt.Errorf("/metrics lacks %v (%v)", missing, err)
		}
		return nil
	})
}

type histogramSample struct {
	count uint64
	sum   float64
}

// gatherHistogram reads the histogram name from the agent's registry.
func gatherHistogram(t *testing.T, name string) histogramSample {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering the registry: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			h := f.GetMetric()[0].GetHistogram()
			return histogramSample{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	t.Fatalf("the registry has no histogram %s", name)
	return histogramSample{}
}
