package podnet_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/rand"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/nodeagent/podnet"
)

// TestPodsCrossNodesWithTheirOwnAddresses builds two nodes and an outside
// host out of network namespaces, each node with one pod behind its
// "cni0", programs both nodes with Network.Sync, and sends real
// connections:
//
//	podA 10.235.1.2 ─cni0─ nodeA 10.234.0.1 ─eth0─ nodeB 10.234.0.2 ─cni0─ podB 10.235.2.2
//	                       nodeA 10.236.0.1 ─ext0─ outside 10.236.0.2
//
// podB sees podA's own address (no NAT inside the cluster), and the
// outside host, which has no route to any pod, sees nodeA's address and
// still answers (masquerade).
func TestPodsCrossNodesWithTheirOwnAddresses(t *testing.T) {
	nodeA, nodeB, podA, podB, outside := bareNetns(t), bareNetns(t), bareNetns(t), bareNetns(t), bareNetns(t)
	link(t, nodeA, "eth0", "10.234.0.1/24", nodeB, "eth0", "10.234.0.2/24")
	link(t, nodeA, "cni0", "10.235.1.1/24", podA, "eth0", "10.235.1.2/24")
	link(t, nodeB, "cni0", "10.235.2.1/24", podB, "eth0", "10.235.2.2/24")
	link(t, nodeA, "ext0", "10.236.0.1/24", outside, "eth0", "10.236.0.2/24")
	ip(t, "-n", nsName(podA), "route", "add", "default", "via", "10.235.1.1")
	ip(t, "-n", nsName(podB), "route", "add", "default", "via", "10.235.2.1")

	nodes := []skiffcorev1.Node{node("a", []string{"10.235.1.0/24"}, "10.234.0.1"), node("b", []string{"10.235.2.0/24"}, "10.234.0.2")}
	table := "skiff_podnet_" + rand.String(6)
	for name, ns := range map[string]podnet.Netns{"a": nodeA, "b": nodeB} {
		network := &podnet.Network{NodeName: name, ClusterCIDR: netip.MustParsePrefix(clusterCIDR), Table: table, Bridge: "cni0", Netns: ns}
		if err := network.Sync(context.Background(), nodes); err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
	}

	serveRemoteAddr(t, podB, "10.235.2.2:8080")
	serveRemoteAddr(t, outside, "10.236.0.2:8080")
	tests := []struct {
		name, to, wantSource string
	}{
		{"pod to a pod on another node keeps its address", "10.235.2.2:8080", "10.235.1.2"},
		{"pod to outside the cluster leaves as its node", "10.236.0.2:8080", "10.236.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := askFrom(podA, tt.to, 5*time.Second)
			if err != nil {
				t.Fatalf("from podA to %s: %v", tt.to, err)
			}
			if got != tt.wantSource {
				t.Errorf("%s saw the connection from %s, want %s", tt.to, got, tt.wantSource)
			}
		})
	}

	// It is podnet that did it: once node a leaves the pod network, neither
	// gets through (node a has no route to podB, the outside none to podA).
	if err := nodeA.Remove(table); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got, err := askFrom(podA, tt.to, time.Second); err == nil {
			t.Errorf("after node a left the pod network, podA still reached %s (it saw %s)", tt.to, got)
		}
	}
}

// serveRemoteAddr listens on addr inside ns and answers each connection
// with the address it came from.
func serveRemoteAddr(t *testing.T, ns podnet.Netns, addr string) {
	t.Helper()
	var ln net.Listener
	err := podnet.RunIn(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	hosttest.Serve(t, ln, func(c net.Conn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() })
}

// askFrom connects from inside ns to addr, waiting at most timeout, and
// returns the answer.
func askFrom(ns podnet.Netns, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := podnet.RunIn(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}
