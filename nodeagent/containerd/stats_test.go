package containerd

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
)

// TestReadCgroup reads cgroup files laid out as the kernel does in
// testdata: cgroup v1's cpuacct and memory hierarchies and cgroup2.
func TestReadCgroup(t *testing.T) {
	at := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, fs, cgroup       string
		cpu, usage, workingSet uint64
		rss                    *uint64 // nil: memory.stat has no RSS line
		wantErr                string
	}{
		{name: "v1: working set is usage less total_inactive_file, RSS is total_rss", fs: "testdata/stats/v1", cgroup: "/skiff/podabc/ctr1",
			cpu: 2_500_000_000, usage: 100 << 20, workingSet: 80 << 20, rss: ptr.To[uint64](50 << 20)},
		{name: "v2: usage_usec in ns, memory.current less inactive_file, RSS is anon", fs: "testdata/stats/v2", cgroup: "/skiff/podabc/ctr1",
			cpu: 1_500_000_000, usage: 64 << 20, workingSet: 64<<20 - 3108864, rss: ptr.To[uint64](60000000)},
		{name: "v1: inactive pages above the usage leave no working set, not an underflow", fs: "testdata/stats/v1", cgroup: "/skiff/podabc/racy",
			cpu: 7, usage: 100, workingSet: 0},
		{name: "v1: a cgroup that is gone", fs: "testdata/stats/v1", cgroup: "/skiff/podabc/gone", wantErr: "no such file"},
		{name: "v1: a counter that is not a number", fs: "testdata/stats/v1", cgroup: "/skiff/podabc/garbled", wantErr: "not a number: nope"},
		{name: "v2: a cgroup that is gone", fs: "testdata/stats/v2", cgroup: "/skiff/podabc/gone", wantErr: "no usage_usec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := readCgroup(tc.fs, tc.cgroup, at)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readCgroup: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *u.cpu.UsageCoreNanoSeconds; got != tc.cpu {
				t.Errorf("usageCoreNanoSeconds %d, want %d", got, tc.cpu)
			}
			if got := *u.memory.UsageBytes; got != tc.usage {
				t.Errorf("usageBytes %d, want %d", got, tc.usage)
			}
			if got := *u.memory.WorkingSetBytes; got != tc.workingSet {
				t.Errorf("workingSetBytes %d, want %d", got, tc.workingSet)
			}
			if got := u.memory.RSSBytes; (got == nil) != (tc.rss == nil) || (got != nil && *got != *tc.rss) {
				t.Errorf("rssBytes %v, want %v", ptrString(got), ptrString(tc.rss))
			}
			if !u.cpu.Time.Time.Equal(at) || !u.memory.Time.Time.Equal(at) || u.cpu.UsageNanoCores != nil {
				t.Errorf("times %v, %v and rate %v: want the reading's time and no rate (the server computes it)", u.cpu.Time, u.memory.Time, u.cpu.UsageNanoCores)
			}
		})
	}
}

// ptrString shows an optional figure: its value, or nil.
func ptrString(p *uint64) string {
	if p == nil {
		return "nil"
	}
	return strconv.FormatUint(*p, 10)
}
