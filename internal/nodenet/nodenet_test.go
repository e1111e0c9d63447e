package nodenet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"skiff.dev/skiff/internal/hosttest"
)

func TestNewRefusesWhatCannotWork(t *testing.T) {
	cases := []struct {
		name, bridge, cidr string
		wantErr            string
	}{
		{"defaults", "skiffnet0", "10.250.0.0/24", ""},
		{"host bits are cleared", "skiffnet0", "10.250.0.7/24", ""},
		{"no bridge", "", "10.250.0.0/24", "node bridge"},
		{"bridge name too long for Linux", "skiffnet0123456789", "10.250.0.0/24", "node bridge"},
		{"IPv6", "skiffnet0", "fd00::/64", "IPv4"},
		{"garbage", "skiffnet0", "ten", "IPv4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.bridge, tc.cidr)
			if tc.wantErr == "" {
				if err != nil || n.Prefix.String() != "10.250.0.0/24" {
					t.Fatalf("New = %v, %v; want 10.250.0.0/24", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}

func TestAddressesAndNames(t *testing.T) {
	n, err := New("skiffnet0", "10.250.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	long, err := New("skiffnet0123456", "10.250.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		got, want string
	}{
		{"host address", n.HostIP().String(), "10.250.0.1"},
		{"node 1", n.NodeIP(1).String(), "10.250.0.2"},
		{"node 3", n.NodeIP(3).String(), "10.250.0.4"},
		{"netns of node 2", n.Netns(2), "skiffnet0-2"},
		{"its path", n.NetnsPath(2), "/run/netns/skiffnet0-2"},
		{"host veth", n.HostVeth(2), "skiffnet0-2"},
		{"host veth of a long bridge name fits in 15 characters", fmt.Sprint(len(long.HostVeth(12)) <= maxLinkName), "true"},
		{"masquerade table", n.MasqueradeTable(), "skiff_nodenet_skiffnet0"},
		{"masquerade table of a name with a dash", Network{Bridge: "sk-net.1"}.MasqueradeTable(), "skiff_nodenet_sk_net_1"},
		{"capacity of a /24", fmt.Sprint(n.Capacity()), "253"},
		{"capacity of a /30", fmt.Sprint(Network{Prefix: netip.MustParsePrefix("10.0.0.0/30")}.Capacity()), "1"},
		{"capacity of a /31", fmt.Sprint(Network{Prefix: netip.MustParsePrefix("10.0.0.0/31")}.Capacity()), "0"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if long.HostVeth(1) == long.HostVeth(2) {
		t.Errorf("two nodes share the host veth name %s", long.HostVeth(1))
	}
}

func TestMasqueradeRuleset(t *testing.T) {
	n, _ := New("skiffnet0", "10.250.0.0/24")
	got := n.MasqueradeRuleset()
	for _, want := range []string{
		// Declaring, then deleting, replaces whatever an earlier run left.
		"table ip skiff_nodenet_skiffnet0\ndelete table ip skiff_nodenet_skiffnet0\n",
		"type nat hook postrouting priority srcnat",
		`ip saddr 10.250.0.0/24 oifname != "skiffnet0" masquerade`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the ruleset lacks %q:\n%s", want, got)
		}
	}
}

// TestTwoNodesTalk builds a real node network of two nodes under unique
// names: each node reaches the other and the host, and tearing it down
// leaves no link, netns or nftables table behind.
func TestTwoNodesTalk(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "ip")
	hosttest.RequireCommand(t, "nft")
	suffix := make([]byte, 3)
	rand.Read(suffix)
	// A range no `make up` uses by default, with a random third octet so
	// that two runs of this test at once keep apart.
	n, err := New("sknt"+hex.EncodeToString(suffix), fmt.Sprintf("10.254.%d.0/24", suffix[0]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.DeleteNode(1)
		_ = n.DeleteNode(2)
		_ = n.Teardown()
	})
	if err := n.Setup(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := n.AddNode(i); err != nil {
			t.Fatal(err)
		}
	}
	// Adding a node again is a reboot: it starts afresh and works.
	if err := n.AddNode(2); err != nil {
		t.Fatalf("re-adding node 2: %v", err)
	}
	if nodes, err := n.Nodes(); err != nil || fmt.Sprint(nodes) != "[1 2]" {
		t.Errorf("Nodes = %v, %v; want [1 2]", nodes, err)
	}

	// Each node and the host listen on their address; each node connects
	// to the others over TCP.
	listeners := map[netip.Addr]net.Listener{n.HostIP(): listenIn(t, netns.None(), n.HostIP())}
	for i := 1; i <= 2; i++ {
		listeners[n.NodeIP(i)] = listenIn(t, nodeNetns(t, n, i), n.NodeIP(i))
	}
	ping := func(i int, to netip.Addr) {
		t.Helper()
		if err := dialIn(nodeNetns(t, n, i), listeners[to].Addr().String()); err != nil {
			t.Errorf("node %d cannot reach %s: %v", i, to, err)
		}
	}
	ping(1, n.NodeIP(2))
	ping(2, n.NodeIP(1))
	ping(1, n.HostIP())
	ping(2, n.NodeIP(2))
	if out, _ := exec.Command("ip", "-n", n.Netns(1), "route", "show", "default").CombinedOutput(); !strings.Contains(string(out), "via "+n.HostIP().String()+" dev eth0") {
		t.Errorf("node 1's default route is %q, want via %s dev eth0", out, n.HostIP())
	}
	if out, _ := exec.Command("ip", "netns", "exec", n.Netns(1), "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput(); strings.TrimSpace(string(out)) != "1" {
		t.Errorf("node 1 does not forward: ip_forward=%q", out)
	}
	if out, err := exec.Command("nft", "list", "table", "ip", n.MasqueradeTable()).CombinedOutput(); err != nil || !strings.Contains(string(out), "masquerade") {
		t.Errorf("no masquerade table: %v\n%s", err, out)
	}

	for _, l := range listeners {
		l.Close()
	}
	for i := 1; i <= 2; i++ {
		if err := n.DeleteNode(i); err != nil {
			t.Error(err)
		}
	}
	if err := n.Teardown(); err != nil {
		t.Error(err)
	}
	for _, link := range []string{n.Bridge, n.HostVeth(1), n.HostVeth(2)} {
		if _, err := netlink.LinkByName(link); err == nil {
			t.Errorf("link %s is left", link)
		}
	}
	for i := 1; i <= 2; i++ {
		if _, err := os.Stat(n.NetnsPath(i)); err == nil {
			t.Errorf("netns %s is left", n.Netns(i))
		}
	}
	if out, _ := exec.Command("nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), n.MasqueradeTable()) {
		t.Errorf("table %s is left:\n%s", n.MasqueradeTable(), out)
	}
	if nodes, err := n.Nodes(); err != nil || len(nodes) != 0 {
		t.Errorf("Nodes after removal = %v, %v; want none", nodes, err)
	}
}

// nodeNetns opens node i's netns for the rest of the test.
func nodeNetns(t *testing.T, n Network, i int) netns.NsHandle {
	t.Helper()
	ns, err := netns.GetFromPath(n.NetnsPath(i))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// listenIn listens on addr in ns (netns.None() for the host's): a socket
// stays in the netns it was made in. The kernel completes a connection's
// handshake without an Accept, which is all dialIn needs.
func listenIn(t *testing.T, ns netns.NsHandle, addr netip.Addr) net.Listener {
	t.Helper()
	var l net.Listener
	listen := func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}
	var err error
	if ns == netns.None() {
		err = listen()
	} else {
		err = inNetns(ns, listen)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dialIn connects to addr from ns.
func dialIn(ns netns.NsHandle, addr string) error {
	return inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
