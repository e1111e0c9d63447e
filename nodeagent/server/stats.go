package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// StatsRuntime is a Runtime that measures its node and pods, for the
// kubelet's /stats/summary that `kubectl skiff top` reads. The containerd
// runtime is one; a runtime that is not serves a summary without usage.
type StatsRuntime interface {
	// Stats reads the node's and each running pod's and container's
	// cumulative CPU time and memory now; the server computes the rates.
	Stats(ctx context.Context) (statsv1alpha1.NodeStats, []statsv1alpha1.PodStats, error)
}

// rateWindow is how long the server waits between two readings when it has
// no earlier one to compute a CPU rate against: the first request, a new
// pod's, or one after staleReading without any.
const rateWindow = time.Second

// staleReading is the age after which a reading is no baseline for a rate:
// the average over a longer time says little of the usage now.
const staleReading = time.Minute

// serveSummary answers /stats/summary: the Summary API's node and pods,
// with usageNanoCores averaged since the last request (or over rateWindow
// when there was none lately).
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	summary := statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: s.cfg.NodeName}, Pods: []statsv1alpha1.PodStats{}}
	if sr, ok := s.cfg.Runtime.(StatsRuntime); ok {
		var err error
		if summary, err = s.measure(r.Context(), sr); err != nil {
			writeError(w, httpError{http.StatusInternalServerError, fmt.Sprintf("reading the node's stats: %v", err)})
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(summary)
}

// measure reads the runtime's stats and adds the CPU rates, reading twice
// rateWindow apart when some cgroup has no recent baseline.
func (s *Server) measure(ctx context.Context, sr StatsRuntime) (statsv1alpha1.Summary, error) {
	read := func() (statsv1alpha1.Summary, error) {
		node, pods, err := sr.Stats(ctx)
		node.NodeName = s.cfg.NodeName
		if pods == nil {
			pods = []statsv1alpha1.PodStats{}
		}
		return statsv1alpha1.Summary{Node: node, Pods: pods}, err
	}
	summary, err := read()
	if err != nil {
		return summary, err
	}
	if s.cpu.lacksBaseline(cpuReadings(&summary)) {
		s.cpu.remember(cpuReadings(&summary))
		select {
		case <-time.After(rateWindow):
		case <-ctx.Done():
			return summary, ctx.Err()
		}
		if summary, err = read(); err != nil {
			return summary, err
		}
	}
	s.cpu.fillRates(cpuReadings(&summary))
	return summary, nil
}

// cpuReadings are the summary's CPU stats by the cgroup they were read
// from: the node, each pod, each pod's container.
func cpuReadings(s *statsv1alpha1.Summary) map[string]*statsv1alpha1.CPUStats {
	out := map[string]*statsv1alpha1.CPUStats{}
	add := func(key string, c *statsv1alpha1.CPUStats) {
		if c != nil && c.UsageCoreNanoSeconds != nil {
			out[key] = c
		}
	}
	add("node", s.Node.CPU)
	for i := range s.Pods {
		p := &s.Pods[i]
		add("pod/"+p.PodRef.UID, p.CPU)
		for j := range p.Containers {
			add("pod/"+p.PodRef.UID+"/"+p.Containers[j].Name, p.Containers[j].CPU)
		}
	}
	return out
}

// cpuSample is a cgroup's cumulative CPU time at a moment.
type cpuSample struct {
	at    time.Time
	total uint64
}

func sampleOf(c *statsv1alpha1.CPUStats) cpuSample {
	return cpuSample{at: c.Time.Time, total: *c.UsageCoreNanoSeconds}
}

// nanoCores is the CPU rate between two readings of a cgroup, in
// billionths of a core; false when prev is no baseline for cur: not
// earlier, too old, or of a counter that went back (a restarted
// container's new cgroup).
func nanoCores(prev, cur cpuSample) (uint64, bool) {
	elapsed := cur.at.Sub(prev.at)
	if elapsed <= 0 || elapsed > staleReading || cur.total < prev.total {
		return 0, false
	}
	return uint64(float64(cur.total-prev.total) / elapsed.Seconds()), true
}

// cpuRates remembers each cgroup's last CPU reading, the baseline of the
// next request's rate. It holds the cgroups of the last request only, so
// that gone pods are forgotten.
type cpuRates struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

// lacksBaseline reports whether some reading has no baseline to compute a
// rate against.
func (c *cpuRates) lacksBaseline(readings map[string]*statsv1alpha1.CPUStats) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, r := range readings {
		prev, ok := c.last[key]
		if !ok {
			return true
		}
		if _, ok := nanoCores(prev, sampleOf(r)); !ok {
			return true
		}
	}
	return false
}

// remember makes readings the baseline of the next rates.
func (c *cpuRates) remember(readings map[string]*statsv1alpha1.CPUStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = make(map[string]cpuSample, len(readings))
	for key, r := range readings {
		c.last[key] = sampleOf(r)
	}
}

// fillRates sets each reading's usageNanoCores from its baseline, when it
// has one, and makes the readings the next baseline.
func (c *cpuRates) fillRates(readings map[string]*statsv1alpha1.CPUStats) {
	c.mu.Lock()
	for key, r := range readings {
		if rate, ok := nanoCores(c.last[key], sampleOf(r)); ok {
			r.UsageNanoCores = &rate
		}
	}
	c.mu.Unlock()
	c.remember(readings)
}
