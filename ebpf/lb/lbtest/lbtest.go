// Package lbtest attaches the eBPF load balancer for a test: to a cgroup
// of the test's own that the test process enters, with pins in a bpffs of
// its own, so that the rest of the machine never sees the test's VIPs.
package lbtest

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/internal/hosttest"
)

// Datapath is a load balancer attached to a test cgroup that holds the
// test process.
type Datapath struct {
	*lb.LoadBalancer
	PinDir, Cgroup string
}

// Attach loads and attaches the datapath for one test, with cidrs as its
// service CIDRs, and undoes everything when the test ends.
func Attach(t *testing.T, cidrs ...netip.Prefix) *Datapath {
	t.Helper()
	hosttest.RequireRoot(t)
	root, err := lb.CgroupRoot()
	hosttest.Require(t, err == nil, fmt.Sprintf("a cgroup2 hierarchy (%v)", err))
	cgroup := filepath.Join(root, fmt.Sprintf("skiff-lbtest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	if err := os.Mkdir(cgroup, 0o755); err != nil {
		t.Fatalf("creating the test cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cgroup); err != nil {
			t.Errorf("removing the test cgroup: %v", err)
		}
	})
	enter(t, root, cgroup)
	pins := t.TempDir()
	t.Cleanup(func() {
		if err := unix.Unmount(pins, 0); err != nil {
			t.Errorf("unmounting the test bpffs: %v", err)
		}
	})
	d := &Datapath{PinDir: pins, Cgroup: cgroup}
	d.Reopen(t)
	t.Cleanup(func() {
		if err := d.Remove(); err != nil {
			t.Errorf("removing the datapath: %v", err)
		}
	})
	if err := d.SetServiceCIDRs(cidrs...); err != nil {
		t.Fatalf("SetServiceCIDRs: %v", err)
	}
	return d
}

// Reopen opens the datapath again over the same pins, as a restarted agent
// does.
func (d *Datapath) Reopen(t *testing.T) {
	t.Helper()
	l, err := lb.OpenCgroup(d.PinDir, d.Cgroup)
	if err != nil {
		t.Fatalf("OpenCgroup (needs a kernel with BPF, BTF and cgroup sock_addr hooks): %v", err)
	}
	d.LoadBalancer = l
}

// enter moves the whole test process into cgroup, and back home at the end.
func enter(t *testing.T, root, cgroup string) {
	t.Helper()
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	home := root
	for line := range strings.SplitSeq(string(own), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			home = filepath.Join(root, path)
		}
	}
	move := func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	}
	if err := move(cgroup); err != nil {
		t.Fatalf("moving the test process into %s: %v", cgroup, err)
	}
	t.Cleanup(func() {
		if err := move(home); err != nil {
			t.Errorf("moving the test process back to %s: %v", home, err)
		}
	})
}
