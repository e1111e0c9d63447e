package podnet_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/podnet"
)

// TestNetworkFollowsNodes runs the controller against the real apiserver,
// programming a throwaway namespace, while Nodes come, get a podCIDR,
// change address and go; then restarts it after a node left while it was
// down.
func TestNetworkFollowsNodes(t *testing.T) {
	ns := newNetns(t)
	suffix := rand.String(5)
	self, n2, n3 := "self-"+suffix, "n2-"+suffix, "n3-"+suffix
	table := "skiff_podnet_" + suffix

	createNode(t, self, "", "10.234.0.1")
	createNode(t, n2, "10.235.2.0/24", "10.234.0.2")
	createNode(t, n3, "", "10.234.0.3")
	network := &podnet.Network{
		NodeName:    self,
		ClusterCIDR: netip.MustParsePrefix(clusterCIDR),
		Table:       table,
		Bridge:      "cni0",
		Netns:       ns,
	}
	stop := env.StartManager(t, network.Setup)

	t.Log("the route to n2; forwarding on; no masquerade rule while this node has no podCIDR")
	eventuallyRoutes(t, ns, "10.235.2.0/24 via 10.234.0.2")
	if got := strings.TrimSpace(inNetns(t, ns, "cat", "/proc/sys/net/ipv4/ip_forward")); got != "1" {
		t.Errorf("ip_forward = %s, want 1", got)
	}
	if got := inNetns(t, ns, "nft", "list", "table", "inet", table); strings.Contains(got, "masquerade") {
		t.Errorf("masquerade table without a podCIDR:\n%s\nwant no rule", got)
	}

	t.Log("this node gets its podCIDR: the masquerade rule appears")
	patchNode(t, self, func(n *skiffcorev1.Node) {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.235.0.0/24", []string{"10.235.0.0/24"}
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		want := `ip saddr 10.235.0.0/24 ip daddr != 10.235.0.0/16 oifname != "cni0" masquerade`
		if got := inNetns(t, ns, "nft", "list", "table", "inet", table); !strings.Contains(got, want) {
			return fmt.Errorf("nft list table inet %s:\n%s\nwant the rule %q", table, got, want)
		}
		return nil
	})

	t.Log("n3 gets its podCIDR, n2 a new address")
	patchNode(t, n3, func(n *skiffcorev1.Node) {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.235.3.0/24", []string{"10.235.3.0/24"}
	})
	patchNodeStatus(t, n2, func(n *skiffcorev1.Node) { n.Status.Addresses[0].Address = "10.234.0.22" })
	eventuallyRoutes(t, ns, "10.235.2.0/24 via 10.234.0.22\n10.235.3.0/24 via 10.234.0.3")

	t.Log("n3 leaves")
	deleteNode(t, n3)
	eventuallyRoutes(t, ns, "10.235.2.0/24 via 10.234.0.22")

	t.Log("n2 leaves while the agent is down; the restarted agent removes its route")
	stop()
	deleteNode(t, n2)
	env.StartManager(t, (&podnet.Network{NodeName: self, ClusterCIDR: network.ClusterCIDR, Table: table, Bridge: "cni0", Netns: ns}).Setup)
	eventuallyRoutes(t, ns, "")
	if err := ns.Remove(table); err != nil {
		t.Error(err)
	}
}

// TestSetupRefusesAnIncompleteNetwork: a node name and an IPv4 cluster CIDR
// are needed before anything runs.
func TestSetupRefusesAnIncompleteNetwork(t *testing.T) {
	tests := []struct {
		name    string
		network podnet.Network
		want    string
	}{
		{"no node name", podnet.Network{ClusterCIDR: netip.MustParsePrefix(clusterCIDR)}, "the node name must be set"},
		{"no cluster CIDR", podnet.Network{NodeName: "n1"}, "the cluster CIDR must be an IPv4 range (--cluster-cidr)"},
		{"IPv6 cluster CIDR", podnet.Network{NodeName: "n1", ClusterCIDR: netip.MustParsePrefix("fd00::/48")}, "must be an IPv4 range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.network.Setup(mgr); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Setup() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// eventuallyRoutes waits until the namespace's skiff routes are want.
func eventuallyRoutes(t *testing.T, ns podnet.Netns, want string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := skiffRoutes(t, ns); got != want {
			return fmt.Errorf("routes:\n%s\nwant\n%s", got, want)
		}
		return nil
	})
}

// createNode creates a Node with a podCIDR (none when empty) and an
// InternalIP, as the node agent and the control plane would, and deletes
// it when the test ends.
func createNode(t *testing.T, name, podCIDR, internalIP string) {
	t.Helper()
	n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	if err := env.Client.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNode(t, name) })
	patchNodeStatus(t, name, func(n *skiffcorev1.Node) {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: internalIP}}
	})
}

func deleteNode(t *testing.T, name string) {
	t.Helper()
	err := env.Client.Delete(context.Background(), &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting node %s: %v", name, err)
	}
}

// patchNode changes a Node's spec.
func patchNode(t *testing.T, name string, change func(*skiffcorev1.Node)) {
	t.Helper()
	n, patch := get(t, name)
	change(n)
	if err := env.Client.Patch(context.Background(), n, patch); err != nil {
		t.Fatalf("patching node %s: %v", name, err)
	}
}

// patchNodeStatus changes a Node's status.
func patchNodeStatus(t *testing.T, name string, change func(*skiffcorev1.Node)) {
	t.Helper()
	n, patch := get(t, name)
	change(n)
	if err := env.Client.Status().Patch(context.Background(), n, patch); err != nil {
		t.Fatalf("patching the status of node %s: %v", name, err)
	}
}

// get reads a Node, and a patch of what will change in it.
func get(t *testing.T, name string) (*skiffcorev1.Node, client.Patch) {
	t.Helper()
	n := &skiffcorev1.Node{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return n, client.MergeFrom(n.DeepCopy())
}
