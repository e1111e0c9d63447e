package containerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"
)

// nodeStatsTestCgroup holds the cgroups TestNodeStatsFromItsCgroup makes.
const nodeStatsTestCgroup = "/skiff-nodestats-test"

// TestNodeStatsFromItsCgroup measures nodes that share this machine: each
// node's summary is its own cgroup's (here one with a busy process that
// holds 32Mi, and an empty one), not the machine's, which a node without
// Config.NodeCgroup reports, as upstream's kubelet reads the root cgroup.
func TestNodeStatsFromItsCgroup(t *testing.T) {
	e := startRuntime(t)
	base := nodeStatsTestCgroup + "/" + rand.String(6)
	busy, empty := base+"/busy", base+"/empty"
	makeCgroup(t, nodeStatsTestCgroup) // removed last, once empty
	makeCgroup(t, base)
	makeCgroup(t, busy)
	makeCgroup(t, empty)
	runBusy(t, busy)

	for _, tc := range []struct {
		name, nodeCgroup   string
		minCores, maxCores float64
		minRSS             uint64
		minUsage, maxUsage uint64
	}{
		{name: "a node's cgroup with a busy process", nodeCgroup: busy, minCores: 0.3, maxCores: 1.2, minRSS: 32 << 20, minUsage: 32 << 20, maxUsage: 128 << 20},
		{name: "a node's cgroup with nothing in it", nodeCgroup: empty, maxCores: 0.05, maxUsage: 1 << 20},
		{name: "a node's cgroup not made yet reads as idle", nodeCgroup: base + "/none", maxUsage: 0},
		{name: "the whole machine", nodeCgroup: "", minCores: 0.3, maxCores: 64, minUsage: 256 << 20, maxUsage: 1 << 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.rt.cfg.NodeCgroup = tc.nodeCgroup
			first, _, err := e.rt.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			second, _, err := e.rt.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			elapsed := second.CPU.Time.Sub(first.CPU.Time.Time).Seconds()
			cores := float64(*second.CPU.UsageCoreNanoSeconds-*first.CPU.UsageCoreNanoSeconds) / 1e9 / elapsed
			if cores < tc.minCores || cores > tc.maxCores {
				t.Errorf("the node used %.2f cores, want %.2f to %.2f", cores, tc.minCores, tc.maxCores)
			}
			m := second.Memory
			if usage := *m.UsageBytes; usage < tc.minUsage || usage > tc.maxUsage {
				t.Errorf("the node's memory usage is %d bytes, want %d to %d", usage, tc.minUsage, tc.maxUsage)
			}
			if tc.minRSS > 0 && (m.RSSBytes == nil || *m.RSSBytes < tc.minRSS) {
				t.Errorf("the node's RSS is %s bytes, want at least %d", ptrString(m.RSSBytes), tc.minRSS)
			}
			if *m.WorkingSetBytes > *m.UsageBytes {
				t.Errorf("working set %d above the usage %d", *m.WorkingSetBytes, *m.UsageBytes)
			}
		})
	}
}

// measuredHierarchies are the directories of a cgroup that readCgroup
// reads: its v1 cpuacct and memory ones, else its cgroup2 one.
func measuredHierarchies(cgroup string) []string {
	if _, err := os.Stat(filepath.Join(cgroupFS, "cpuacct")); err == nil {
		return []string{filepath.Join(cgroupFS, "cpuacct", cgroup), filepath.Join(cgroupFS, "memory", cgroup)}
	}
	return []string{filepath.Join(cgroupFS, cgroup)}
}

// makeCgroup makes a cgroup where readCgroup reads it, and removes it when
// the test ends (after the processes in it, whose cleanups run first).
func makeCgroup(t *testing.T, cgroup string) {
	t.Helper()
	for _, dir := range measuredHierarchies(cgroup) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
	}
}

// runBusy runs a process in cgroup that keeps a CPU busy copying 32Mi
// blocks: it joins the cgroup before it allocates them, so that its memory
// is charged there (cgroup v1 leaves the charges of a process that moves
// behind). It is killed when the test ends.
func runBusy(t *testing.T, cgroup string) {
	t.Helper()
	join := ""
	for _, dir := range measuredHierarchies(cgroup) {
		join += fmt.Sprintf("echo $$ > %s/cgroup.procs && ", dir)
	}
	cmd := exec.Command("sh", "-c", join+"exec dd if=/dev/zero of=/dev/null bs=32M")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Let it join and allocate before the first reading.
	time.Sleep(500 * time.Millisecond)
}
