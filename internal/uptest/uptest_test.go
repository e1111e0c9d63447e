package uptest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"skiff.dev/skiff/internal/hosttest"
)

func TestFlagValue(t *testing.T) {
	args := []string{"/bin/nodeagent", "--node-name=n-1", "--containerd-address", "/run/c.sock", "-v=2", "--cni-bridge="}
	for _, tc := range []struct {
		name, want string
	}{
		{"node-name", "n-1"},
		{"containerd-address", "/run/c.sock"},
		{"v", "2"},
		{"cni-bridge", ""},
		{"node-ip", ""},
		{"node", ""}, // a prefix of a flag is not the flag
	} {
		if got := FlagValue(args, tc.name); got != tc.want {
			t.Errorf("FlagValue(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The test's own process is below its parent, with its command line.
func TestDescendantsAndCmdline(t *testing.T) {
	if !slices.Contains(Descendants(os.Getppid()), os.Getpid()) {
		t.Errorf("Descendants(%d) misses this process %d", os.Getppid(), os.Getpid())
	}
	if got := Cmdline(os.Getpid()); !slices.Equal(got, os.Args) {
		t.Errorf("Cmdline = %q, want %q", got, os.Args)
	}
}

func TestFreePortsAreApart(t *testing.T) {
	ports, err := FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ports {
		for _, q := range ports[i+1:] {
			if q-p <= 1 && p-q <= 1 {
				t.Errorf("ports %d and %d overlap: up uses each port and the next", p, q)
			}
		}
	}
}

func TestFreePortsAreReservedAgainstOtherProcesses(t *testing.T) {
	hosttest.RequireCommand(t, "flock")
	ports, err := FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p < portsFrom || p+1 >= portsTo {
			t.Errorf("port %d is outside [%d, %d): the kernel may hand it to an outgoing connection", p, portsFrom, portsTo)
		}
		// flock(1) stands for another test process: it must not get the lock.
		lock := filepath.Join(os.TempDir(), "skiff-test-ports", fmt.Sprint(p))
		if out, err := exec.Command("flock", "--nonblock", lock, "true").CombinedOutput(); err == nil {
			t.Errorf("another process could take port %d's lock (%s)", p, out)
		}
	}
	again, err := FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if slices.Contains(ports, p) {
			t.Errorf("port %d was handed out twice", p)
		}
	}
}
