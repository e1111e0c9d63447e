package cni

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/hosttest"
)

// inNetNS runs fn on an OS thread inside the network namespace at path, as a
// pod's process would be. Sockets fn opens stay in that namespace and may be
// used from any goroutine afterwards.
func inNetNS(t *testing.T, path string, fn func() error) error {
	t.Helper()
	target, err := os.Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	enter := func() error { return unix.Setns(int(target.Fd()), unix.CLONE_NEWNET) }
	return onNetNSThread(enter, fn)
}

// netNSInode identifies a network namespace.
func netNSInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestNetNSLifecycle(t *testing.T) {
	hosttest.RequireRoot(t)
	path := filepath.Join(t.TempDir(), "netns", "pod")
	t.Cleanup(func() { removeNetNS(path) })

	if err := createNetNS(path); err != nil {
		t.Fatalf("createNetNS: %v", err)
	}
	if !isNetNS(path) {
		t.Fatalf("%s is not a mounted network namespace after createNetNS", path)
	}
	ino := netNSInode(t, path)
	if host := netNSInode(t, "/proc/self/ns/net"); ino == host {
		t.Fatalf("the new namespace is the host's (inode %d)", host)
	}
	if err := createNetNS(path); err != nil {
		t.Fatalf("createNetNS again: %v", err)
	}
	if again := netNSInode(t, path); again != ino {
		t.Errorf("createNetNS on an existing namespace replaced it: inode %d, was %d", again, ino)
	}
	// Processes can enter it, as the pod's containers will.
	if err := inNetNS(t, path, func() error { return nil }); err != nil {
		t.Fatalf("enter the namespace: %v", err)
	}

	if err := removeNetNS(path); err != nil {
		t.Fatalf("removeNetNS: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still exists after removeNetNS (stat error %v)", path, err)
	}
	if err := removeNetNS(path); err != nil {
		t.Errorf("removeNetNS of a removed namespace: %v, want nil", err)
	}

	// A bare file, as a reboot leaves it, is not a namespace and is
	// turned into one.
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if isNetNS(path) {
		t.Fatalf("a bare file counts as a namespace")
	}
	if err := createNetNS(path); err != nil || !isNetNS(path) {
		t.Fatalf("createNetNS over a bare file: %v, isNetNS %v", err, isNetNS(path))
	}
}
