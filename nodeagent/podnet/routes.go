// Package podnet joins the nodes' pod networks, as flannel's host-gw
// backend does: every node routes each other node's podCIDR to that node's
// InternalIP, so a packet from a pod on one node reaches a pod on another
// with both addresses intact, and only traffic leaving the cluster is
// masqueraded to the node's address. It needs the nodes on one link (one
// L2 segment), which is what several nodes on one machine, on one bridge,
// have; there is no encapsulation.
//
// Each node agent runs it in its own network namespace: the routes go into
// that namespace's main table, marked with RouteProtocol, and the
// masquerade rule into an nftables table of its own.
package podnet

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// Route sends the pods of Node (its podCIDR Dst) through Via, the node's
// InternalIP of the same family.
type Route struct {
	Node string
	Dst  netip.Prefix
	Via  netip.Addr
}

// Routes computes the routes this node (self) needs: one per podCIDR of
// every other node, through that node's InternalIP of the same family.
// A node without a podCIDR (the control plane has not allocated one yet)
// or without an InternalIP of that family gets none, and self gets none
// because its podCIDR is on its own pod bridge. The result is sorted by
// destination, so that equal inputs give equal outputs. It is pure.
func Routes(self string, nodes []skiffcorev1.Node) []Route {
	var out []Route
	for i := range nodes {
		node := &nodes[i]
		if node.Name == self {
			continue
		}
		ips := internalIPs(node)
		for _, cidr := range PodCIDRs(node) {
			for _, ip := range ips {
				if ip.Is4() == cidr.Addr().Is4() {
					out = append(out, Route{Node: node.Name, Dst: cidr, Via: ip})
					break
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Route) int {
		return cmp.Or(a.Dst.Addr().Compare(b.Dst.Addr()), cmp.Compare(a.Dst.Bits(), b.Dst.Bits()), cmp.Compare(a.Node, b.Node))
	})
	return out
}

// PodCIDRs returns a node's pod ranges: spec.podCIDRs, or spec.podCIDR
// alone when the list is empty (an older writer set only that). Ranges
// that do not parse are left out, and addresses are masked to their
// prefix, so that "10.244.1.5/24" routes 10.244.1.0/24 as the kernel would.
func PodCIDRs(node *skiffcorev1.Node) []netip.Prefix {
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// internalIPs returns a node's InternalIP addresses, in status order.
func internalIPs(node *skiffcorev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
