package network

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// Pods reach each other across nodes by their own addresses, and the server
// sees the client pod's IP: the pod network routes between the nodes'
// podCIDRs and does no NAT inside the cluster. Each pod's IP comes from its
// own node's podCIDR.
func TestPodToPodAcrossNodesWithoutNAT(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t)
	from := clientPod(ns, "client", c.Nodes[0].Name, "")
	servers := make([]*skiffcorev1.Pod, len(c.Nodes))
	for i, n := range c.Nodes {
		servers[i] = echoPod(ns, "echo-"+n.Name, n.Name, "echo")
	}
	c.create(t, from)
	for _, s := range servers {
		c.create(t, s)
	}
	c.waitReady(t, append([]*skiffcorev1.Pod{from}, servers...)...)

	for _, p := range append([]*skiffcorev1.Pod{from}, servers...) {
		c.checkIPInPodCIDR(t, p)
	}
	for _, s := range servers {
		t.Run("from "+from.Spec.NodeName+" to "+s.Spec.NodeName, func(t *testing.T) {
			var remote string
			testenv.Eventually(t, trafficLimit, func() error {
				out, err := c.execIn(t, from, "timeout", "3", "wget", "-qO-", "http://"+net.JoinHostPort(s.Status.PodIP, "8080")+"/remote")
				remote = strings.TrimSpace(out)
				return err
			})
			host, _, err := net.SplitHostPort(remote)
			if err != nil || host != from.Status.PodIP {
				t.Errorf("the echo server on %s saw the client at %q, want the client pod's own IP %s (no NAT between pods)", s.Spec.NodeName, remote, from.Status.PodIP)
			}
		})
	}
}

// checkIPInPodCIDR checks that a pod's IP is in its node's podCIDR.
func (c *cluster) checkIPInPodCIDR(t *testing.T, p *skiffcorev1.Pod) {
	t.Helper()
	var n skiffcorev1.Node
	if err := c.Client.Get(t.Context(), client.ObjectKey{Name: p.Spec.NodeName}, &n); err != nil {
		t.Fatal(err)
	}
	cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
	ip, ipErr := netip.ParseAddr(p.Status.PodIP)
	if err != nil || ipErr != nil || !cidr.Contains(ip) {
		t.Errorf("pod %s on %s has IP %q, want one in its node's podCIDR %q", p.Name, n.Name, p.Status.PodIP, n.Spec.PodCIDR)
	}
}
