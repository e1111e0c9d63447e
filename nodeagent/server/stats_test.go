package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/nodeagent/containerd"
)

// The containerd runtime measures its pods for /stats/summary.
var _ StatsRuntime = &containerd.Runtime{}

func TestNanoCores(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		prev, cur cpuSample
		want      uint64
		wantOK    bool
	}{
		{"a quarter core over 2 s", cpuSample{t0, 1e9}, cpuSample{t0.Add(2 * time.Second), 1.5e9}, 250_000_000, true},
		{"two cores over 1 s", cpuSample{t0, 0}, cpuSample{t0.Add(time.Second), 2e9}, 2e9, true},
		{"idle", cpuSample{t0, 7}, cpuSample{t0.Add(time.Second), 7}, 0, true},
		{"a minute, the oldest baseline taken", cpuSample{t0, 0}, cpuSample{t0.Add(time.Minute), 30e9}, 500_000_000, true},
		{"an hour-long counter over 10 s does not overflow", cpuSample{t0, 7200e9}, cpuSample{t0.Add(10 * time.Second), 7220e9}, 2e9, true},
		{"no baseline (the zero sample)", cpuSample{}, cpuSample{t0, 1e9}, 0, false},
		{"a stale baseline", cpuSample{t0, 0}, cpuSample{t0.Add(time.Minute + time.Second), 1e9}, 0, false},
		{"the same moment", cpuSample{t0, 0}, cpuSample{t0, 1e9}, 0, false},
		{"a counter that went back: a restarted container", cpuSample{t0, 5e9}, cpuSample{t0.Add(time.Second), 1e9}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := nanoCores(tc.prev, tc.cur)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("nanoCores: %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestCPURates checks the baselines the server keeps between requests: a
// new cgroup lacks one, the readings of a request become the next ones,
// and gone cgroups are forgotten.
func TestCPURates(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	reading := func(at time.Duration, total uint64) *statsv1alpha1.CPUStats {
		return &statsv1alpha1.CPUStats{Time: metav1.NewTime(t0.Add(at)), UsageCoreNanoSeconds: ptr.To(total)}
	}
	var c cpuRates
	first := map[string]*statsv1alpha1.CPUStats{"node": reading(0, 1e9), "pod/a": reading(0, 0)}
	if !c.lacksBaseline(first) {
		t.Fatal("the first readings have a baseline")
	}
	c.remember(first)
	second := map[string]*statsv1alpha1.CPUStats{"node": reading(time.Second, 2e9), "pod/a": reading(time.Second, 5e8)}
	if c.lacksBaseline(second) {
		t.Fatal("readings a second after remembered ones lack a baseline")
	}
	c.fillRates(second)
	if got := second["node"].UsageNanoCores; got == nil || *got != 1e9 {
		t.Errorf("node: %v nanocores, want one core", got)
	}
	if got := second["pod/a"].UsageNanoCores; got == nil || *got != 5e8 {
		t.Errorf("pod a: %v nanocores, want half a core", got)
	}
	third := map[string]*statsv1alpha1.CPUStats{"node": reading(3*time.Second, 3e9), "pod/b": reading(3*time.Second, 1e9)}
	if !c.lacksBaseline(third) {
		t.Error("a new pod's reading has a baseline")
	}
	c.fillRates(third)
	if got := third["node"].UsageNanoCores; got == nil || *got != 5e8 {
		t.Errorf("node: %v nanocores, want half a core since the second reading", got)
	}
	if third["pod/b"].UsageNanoCores != nil {
		t.Errorf("pod b without a baseline got a rate: %d", *third["pod/b"].UsageNanoCores)
	}
	if _, ok := c.last["pod/a"]; ok {
		t.Error("the baseline of pod a, gone, is still kept")
	}
}

// steadyRuntime is a node whose root cgroup burns half a core and holds a
// pod whose container burns a quarter of one, in real time.
type steadyRuntime struct {
	logFileRuntime
	start time.Time
}

func (s steadyRuntime) Stats(context.Context) (statsv1alpha1.NodeStats, []statsv1alpha1.PodStats, error) {
	now := time.Now()
	busy := func(cores float64) *statsv1alpha1.CPUStats {
		return &statsv1alpha1.CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: ptr.To(uint64(cores * float64(now.Sub(s.start))))}
	}
	memory := &statsv1alpha1.MemoryStats{Time: metav1.NewTime(now), WorkingSetBytes: ptr.To[uint64](64 << 20), UsageBytes: ptr.To[uint64](80 << 20)}
	node := statsv1alpha1.NodeStats{CPU: busy(0.5), Memory: memory}
	pod := statsv1alpha1.PodStats{
		PodRef:     statsv1alpha1.PodReference{Namespace: "default", Name: "busy", UID: "u1"},
		CPU:        busy(0.25),
		Memory:     memory,
		Containers: []statsv1alpha1.ContainerStats{{Name: "main", CPU: busy(0.25), Memory: memory}},
	}
	return node, []statsv1alpha1.PodStats{pod}, nil
}

// TestStatsSummary serves /stats/summary to a caller granted nodes/stats
// get, with CPU rates on the first request, and refuses callers without
// the grant, as the kubelet does.
func TestStatsSummary(t *testing.T) {
	base := startServer(t, "node-stats", steadyRuntime{start: time.Now().Add(-time.Hour)})
	plain := startServer(t, "node-plain", logFileRuntime{})
	statsReader := serviceAccount(t, grant{"stats", []string{"get"}})
	logReader := serviceAccount(t, grant{"log", []string{"get"}})

	summaryOf := func(t *testing.T, url string) statsv1alpha1.Summary {
		t.Helper()
		code, body := get(t, url+"/stats/summary", statsReader)
		if code != http.StatusOK {
			t.Fatalf("/stats/summary: %d %s", code, body)
		}
		var s statsv1alpha1.Summary
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatalf("decoding the summary %s: %v", body, err)
		}
		return s
	}
	near := func(got *uint64, want float64) bool {
		return got != nil && float64(*got) > want*0.8 && float64(*got) < want*1.2
	}

	t.Run("rates on the first request and the next", func(t *testing.T) {
		for range 2 {
			s := summaryOf(t, base)
			if s.Node.NodeName != "node-stats" || s.Node.CPU == nil || !near(s.Node.CPU.UsageNanoCores, 5e8) {
				t.Fatalf("node stats %+v: want node-stats at half a core", s.Node)
			}
			if len(s.Pods) != 1 || !near(s.Pods[0].CPU.UsageNanoCores, 2.5e8) || !near(s.Pods[0].Containers[0].CPU.UsageNanoCores, 2.5e8) {
				t.Fatalf("pods %+v: want pod busy and its container at a quarter core", s.Pods)
			}
			if *s.Pods[0].Memory.WorkingSetBytes != 64<<20 {
				t.Errorf("pod working set %d, want 64Mi", *s.Pods[0].Memory.WorkingSetBytes)
			}
		}
	})
	t.Run("a runtime that does not measure", func(t *testing.T) {
		s := summaryOf(t, plain)
		if s.Node.NodeName != "node-plain" || s.Node.CPU != nil || len(s.Pods) != 0 {
			t.Errorf("summary %+v: want the node's name alone", s)
		}
	})
	t.Run("nodes/log is not nodes/stats", func(t *testing.T) {
		code, body := get(t, base+"/stats/summary", logReader)
		if code != http.StatusForbidden || !strings.Contains(body, "verb=get, resource=nodes, subresource=stats") {
			t.Errorf("got %d %q, want 403 on nodes/stats", code, body)
		}
	})
	t.Run("no token", func(t *testing.T) {
		if code, _ := get(t, base+"/stats/summary", ""); code != http.StatusUnauthorized {
			t.Errorf("got %d, want 401", code)
		}
	})
}
