package podnet_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/rand"

	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/podnet"
)

// env is the suite's control plane, shared by every test in the package.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.RunSuite(m, "nodeagent/podnet", &env) }

// The tests' addresses: a node link 10.234.0.0/24 (this node .1, the
// others .2 and .3), the pods' cluster range 10.235.0.0/16 with one /24 per
// node, and 10.237.0.0/16 for what is not on the link.
const (
	linkAddr    = "10.234.0.1/24"
	linkAddr6   = "fd00:234::1/64"
	clusterCIDR = "10.235.0.0/16"
)

// newNetns creates a network namespace of the test's own, with lo and a
// eth0 up on the node link, as each node of a `make up NODES=3` has, and
// returns its path. eth0 is a veth whose peer stays in the namespace
// too: the kernel here has no dummy interfaces, and a route needs only a
// link that is up. It is deleted, with all its routes and tables,
// when the test ends.
func newNetns(t *testing.T) podnet.Netns {
	t.Helper()
	ns := bareNetns(t)
	name := nsName(ns)
	ip(t, "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
	ip(t, "-n", name, "link", "set", "peer0", "up")
	ip(t, "-n", name, "addr", "add", linkAddr, "dev", "eth0")
	ip(t, "-n", name, "addr", "add", linkAddr6, "dev", "eth0", "nodad")
	ip(t, "-n", name, "link", "set", "eth0", "up")
	return ns
}

// bareNetns creates a network namespace with only lo, up, deleted when
// the test ends.
func bareNetns(t *testing.T) podnet.Netns {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "ip")
	hosttest.RequireCommand(t, "nft")
	name := "skiff-podnet-" + rand.String(6)
	ip(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ip(t, "-n", name, "link", "set", "lo", "up")
	return podnet.Netns{Path: "/run/netns/" + name}
}

// link joins namespaces a and b with a veth pair, ifA in a with address
// addrA and ifB in b with addrB, both up.
func link(t *testing.T, a podnet.Netns, ifA, addrA string, b podnet.Netns, ifB, addrB string) {
	t.Helper()
	ip(t, "-n", nsName(a), "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsName(b))
	for _, end := range []struct{ ns, ifName, addr string }{{nsName(a), ifA, addrA}, {nsName(b), ifB, addrB}} {
		ip(t, "-n", end.ns, "addr", "add", end.addr, "dev", end.ifName)
		ip(t, "-n", end.ns, "link", "set", end.ifName, "up")
	}
}

// nsName is the name `ip -n` knows a test namespace by.
func nsName(ns podnet.Netns) string { return strings.TrimPrefix(ns.Path, "/run/netns/") }

// ip runs the ip command and returns its output, failing the test on error.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "ip", args...)
}

// inNetns runs a command inside ns and returns its output.
func inNetns(t *testing.T, ns podnet.Netns, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", nsName(ns)}, args...)...)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// skiffRoutes lists the namespace's routes marked as skiff's, of both
// families, one "<dst> via <gw>" per line, as `ip route` shows them.
func skiffRoutes(t *testing.T, ns podnet.Netns) string {
	t.Helper()
	var lines []string
	for _, family := range []string{"-4", "-6"} {
		out := ip(t, family, "-n", nsName(ns), "route", "show", "proto", fmt.Sprint(podnet.RouteProtocol))
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[1] == "via" {
				lines = append(lines, strings.Join(f[:3], " "))
			}
		}
	}
	return strings.Join(lines, "\n")
}
