package nodeagent

import (
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestParseMemTotal(t *testing.T) {
	cases := []struct {
		name    string
		text    string
		want    int64
		wantErr string
	}{
		{"kB, as Linux writes it", "MemTotal:       16384256 kB\nMemFree:         1024 kB\n", 16384256 * 1024, ""},
		{"not the first line", "MemFree: 1 kB\nMemTotal: 2048 kB\n", 2048 * 1024, ""},
		{"no unit", "MemTotal: 4096\n", 4096, ""},
		{"missing", "MemFree: 1 kB\n", 0, "no MemTotal"},
		{"garbage", "MemTotal: lots kB\n", 0, "not a positive number"},
		{"unknown unit", "MemTotal: 1 GB\n", 0, "unknown unit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMemTotal(strings.NewReader(tc.text))
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("parseMemTotal = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestHostCapacity reads this machine, as a real node's agent does.
func TestHostCapacity(t *testing.T) {
	got, err := HostCapacity(DefaultMaxPods)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cpu().Value() != int64(goruntime.NumCPU()) {
		t.Errorf("cpu = %s, want the %d CPUs Go sees", got.Cpu(), goruntime.NumCPU())
	}
	if got.Memory().Value() < 64<<20 {
		t.Errorf("memory = %s, want this machine's memory", got.Memory())
	}
	if got.Pods().Value() != 110 {
		t.Errorf("pods = %s, want upstream's 110", got.Pods())
	}
}

func TestAllocatable(t *testing.T) {
	capacity := capacity(4, 8<<30, 110)
	cases := []struct {
		name     string
		reserved corev1.ResourceList
		cpu, mem string
	}{
		{"nothing reserved", nil, "4", "8Gi"},
		{"some reserved", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}, "3500m", "7Gi"},
		{"more than there is", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}, "0", "8Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Allocatable(capacity, tc.reserved)
			if got.Cpu().Cmp(resource.MustParse(tc.cpu)) != 0 || got.Memory().Cmp(resource.MustParse(tc.mem)) != 0 {
				t.Errorf("allocatable = cpu %s memory %s, want %s %s", got.Cpu(), got.Memory(), tc.cpu, tc.mem)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	cases := map[string]string{
		"NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n": "Debian GNU/Linux 12 (bookworm)",
		"PRETTY_NAME='Alpine Linux v3.20'\n":                                          "Alpine Linux v3.20",
		"PRETTY_NAME=Plain\n":                                                         "Plain",
		"NAME=x\n":                                                                    "Unknown",
	}
	for text, want := range cases {
		if got := parseOSRelease(strings.NewReader(text)); got != want {
			t.Errorf("parseOSRelease(%q) = %q, want %q", text, got, want)
		}
	}
}

// TestNodeStatusWritesOnlyWhenNeeded checks when the agent rewrites its
// node's status: at first, when something else changed it (Ready=Unknown
// from the lifecycle controller), and when the report is due; not otherwise.
func TestNodeStatusWritesOnlyWhenNeeded(t *testing.T) {
	cfg := NodeConfig{Name: "n1", InternalIP: "192.0.2.1", Capacity: capacity(2, 4<<30, 110), OSImage: "os", KernelVersion: "k"}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	const every = 5 * time.Minute

	first, write, _ := nodeStatus(corev1.NodeStatus{}, cfg, "simulated://0.1", nil, now, every)
	if !write {
		t.Fatal("a new node's status is not written")
	}
	if c := nodeCondition(first, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "KubeletReady" || !c.LastHeartbeatTime.Time.Equal(now) {
		t.Fatalf("Ready = %+v, want True, KubeletReady, heartbeat now", c)
	}

	cases := []struct {
		name      string
		change    func(*corev1.NodeStatus)
		at        time.Duration
		wantWrite bool
	}{
		{"nothing changed", func(*corev1.NodeStatus) {}, time.Minute, false},
		{"report due", func(*corev1.NodeStatus) {}, every, true},
		{"marked Ready=Unknown", func(s *corev1.NodeStatus) { nodeCondition(*s, corev1.NodeReady).Status = corev1.ConditionUnknown }, time.Minute, true},
		{"capacity changed", func(s *corev1.NodeStatus) { s.Capacity = capacity(1, 4<<30, 110) }, time.Minute, true},
		{"another's condition added", func(s *corev1.NodeStatus) {
			s.Conditions = append(s.Conditions, corev1.NodeCondition{Type: "NetworkUnavailable", Status: corev1.ConditionFalse})
		}, time.Minute, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := *first.DeepCopy()
			tc.change(&old)
			got, write, next := nodeStatus(old, cfg, "simulated://0.1", nil, now.Add(tc.at), every)
			if write != tc.wantWrite {
				t.Fatalf("write = %v, want %v", write, tc.wantWrite)
			}
			ready := nodeCondition(got, corev1.NodeReady)
			if ready.Status != corev1.ConditionTrue {
				t.Errorf("Ready = %s, want True", ready.Status)
			}
			if write && !next.Equal(now.Add(tc.at).Add(every)) || !write && !next.Equal(now.Add(every)) {
				t.Errorf("next report at %v", next)
			}
		})
	}
}

func nodeCondition(s corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}
