// Package hosttest lets end-to-end tests that need the real host (root,
// containerd, runc, CNI plugins, BPF) say what they need in one place. A
// missing prerequisite fails the test under CI=true, where `make test` has
// installed everything, and skips it with a loud reason elsewhere, so that a
// developer without root can still run the rest.
package hosttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when ok is false: it fails under CI and skips, saying
// what is missing and how to get it, elsewhere.
func Require(tb testing.TB, ok bool, missing string) {
	tb.Helper()
	if ok {
		return
	}
	if InCI() {
		tb.Fatalf("prerequisite missing in CI: %s", missing)
	}
	tb.Skipf("prerequisite missing: %s (under CI=true this fails)", missing)
}

// RequireRoot needs the test to run as root, as containers, network
// namespaces and BPF programs do.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	Require(tb, os.Geteuid() == 0, "root (run the tests as root, as CI does)")
}

// RequireCommand needs a program on PATH, such as containerd or runc.
func RequireCommand(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	Require(tb, err == nil, name+" on PATH (make node-prereqs installs it)")
	return path
}

// RequireFile needs a file or directory, such as /usr/lib/cni/bridge.
func RequireFile(tb testing.TB, path string) {
	tb.Helper()
	_, err := os.Stat(path)
	Require(tb, err == nil, path+" (make node-prereqs installs it)")
}

// Serve accepts every connection on ln until the test ends, and answers
// each with answer(conn) and a newline before closing it: the small server
// of tests that ask which backend answered, or whom the server saw.
func Serve(tb testing.TB, ln net.Listener, answer func(net.Conn) string) {
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, answer(c))
			c.Close()
		}
	}()
}

// FreeSubnet returns a /24 of the form "A.B.x.0/24" (prefix "A.B") that no
// interface of the host holds an address in and that no other test of this
// machine has taken: a range already routed to another bridge (one a
// killed test run left, say) would send the test's traffic there. It is
// reserved through a lock file until the test ends.
func FreeSubnet(tb testing.TB, prefix string) netip.Prefix {
	tb.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		tb.Fatal(err)
	}
	for range 500 {
		subnet := netip.MustParsePrefix(fmt.Sprintf("%s.%d.0/24", prefix, rand.IntN(250)+1))
		if slices.ContainsFunc(addrs, func(a net.Addr) bool {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				return false
			}
			ip, _ := netip.AddrFromSlice(ipn.IP)
			return subnet.Contains(ip.Unmap())
		}) {
			continue
		}
		lock := filepath.Join(os.TempDir(), "skiff-test-subnet-"+strings.ReplaceAll(subnet.Addr().String(), ".", "-"))
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			continue
		}
		f.Close()
		tb.Cleanup(func() { os.Remove(lock) })
		return subnet
	}
	tb.Fatalf("no free %s.x.0/24 range on this host", prefix)
	return netip.Prefix{}
}
