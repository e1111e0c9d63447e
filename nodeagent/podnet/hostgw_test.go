package podnet_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"skiff.dev/skiff/nodeagent/podnet"
)

// TestRoutesInANetns programs the routes of two other nodes in a throwaway
// namespace, then follows one node leaving and the other moving, and
// shows that routes of other origins are never touched and that a fresh
// start (an agent restarted, another Netns value) finds its own routes by
// their protocol and converges.
func TestRoutesInANetns(t *testing.T) {
	ns := newNetns(t)
	ctx := context.Background()
	// Someone else's route, to a range that podnet will also be asked to
	// forget: it must stay.
	ip(t, "-n", nsName(ns), "route", "add", "10.235.9.0/24", "via", "10.234.0.9", "proto", "static")

	two := []podnet.Route{
		route("n2", "10.235.2.0/24", "10.234.0.2"),
		route("n3", "10.235.3.0/24", "10.234.0.3"),
		route("n3", "fd00:235:3::/64", "fd00:234::3"),
	}
	if err := ns.SyncRoutes(ctx, two); err != nil {
		t.Fatal(err)
	}
	want := "10.235.2.0/24 via 10.234.0.2\n10.235.3.0/24 via 10.234.0.3\nfd00:235:3::/64 via fd00:234::3"
	if got := skiffRoutes(t, ns); got != want {
		t.Fatalf("routes after the first sync:\n%s\nwant\n%s", got, want)
	}
	// The kernel chose the device: the one on the next hop's subnet.
	if got := ip(t, "-n", nsName(ns), "route", "get", "10.235.2.7"); !strings.Contains(got, "via 10.234.0.2 dev eth0") {
		t.Errorf("ip route get 10.235.2.7 = %q, want via 10.234.0.2 dev eth0", got)
	}

	// n2 leaves, n3 gets another address; the agent restarts in between,
	// and a route of a node that left while it was down is still there.
	ip(t, "-n", nsName(ns), "route", "add", "10.235.8.0/24", "via", "10.234.0.8", "proto", "83")
	restarted := podnet.Netns{Path: ns.Path}
	moved := []podnet.Route{route("n3", "10.235.3.0/24", "10.234.0.33")}
	if err := restarted.SyncRoutes(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if got, want := skiffRoutes(t, ns), "10.235.3.0/24 via 10.234.0.33"; got != want {
		t.Errorf("routes after n2 left and n3 moved:\n%s\nwant\n%s", got, want)
	}
	if got := ip(t, "-n", nsName(ns), "route", "show", "10.235.9.0/24"); !strings.Contains(got, "via 10.234.0.9") || !strings.Contains(got, "proto static") {
		t.Errorf("someone else's route: ip route show 10.235.9.0/24 = %q, want it untouched", got)
	}

	if err := ns.Remove(podnet.DefaultTable + "_unused"); err != nil {
		t.Fatal(err)
	}
	if got := skiffRoutes(t, ns); got != "" {
		t.Errorf("routes after Remove:\n%s\nwant none", got)
	}
	if got := ip(t, "-n", nsName(ns), "route", "show", "10.235.9.0/24"); !strings.Contains(got, "via 10.234.0.9") {
		t.Errorf("someone else's route after Remove: ip route show 10.235.9.0/24 = %q, want it untouched", got)
	}
}

// TestUnreachableNextHop: a node whose address is not on this node's link
// cannot be routed to; the sync says which node and why, and still
// programs the others.
func TestUnreachableNextHop(t *testing.T) {
	ns := newNetns(t)
	err := ns.SyncRoutes(context.Background(), []podnet.Route{
		route("far", "10.235.4.0/24", "10.237.0.4"),
		route("near", "10.235.5.0/24", "10.234.0.5"),
	})
	if err == nil || !strings.Contains(err.Error(), "node far's pods 10.235.4.0/24 via 10.237.0.4") || !strings.Contains(err.Error(), "directly connected") {
		t.Errorf("SyncRoutes() error = %v, want one naming node far and its unreachable next hop", err)
	}
	if got, want := skiffRoutes(t, ns), "10.235.5.0/24 via 10.234.0.5"; got != want {
		t.Errorf("routes:\n%s\nwant\n%s", got, want)
	}
}

// TestForwarding: forwarding is turned on in the namespace programmed, and
// only there.
func TestForwarding(t *testing.T) {
	ns := newNetns(t)
	host, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	// A new namespace may inherit forwarding from the host's; start from off.
	inNetns(t, ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	if got := strings.TrimSpace(inNetns(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "0" {
		t.Fatalf("ip_forward in the namespace = %s after turning it off; the test shows nothing", got)
	}
	if err := ns.EnableForwarding(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(inNetns(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward in the namespace = %s, want 1", got)
	}
	if after, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(after) != string(host) {
		t.Errorf("the test process's own ip_forward changed from %q to %q", host, after)
	}
}
