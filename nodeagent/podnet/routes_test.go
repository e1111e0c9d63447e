package podnet_test

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/podnet"
)

// node is a Node with podCIDRs and addresses ("1.2.3.4" InternalIPs; a
// "host:" prefix makes a Hostname address instead).
func node(name string, podCIDRs []string, addrs ...string) skiffcorev1.Node {
	n := skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Spec.PodCIDRs = podCIDRs
	if len(podCIDRs) > 0 {
		n.Spec.PodCIDR = podCIDRs[0]
	}
	for _, a := range addrs {
		typ := corev1.NodeInternalIP
		if len(a) > 5 && a[:5] == "host:" {
			typ, a = corev1.NodeHostName, a[5:]
		}
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: typ, Address: a})
	}
	return n
}

func route(node, dst, via string) podnet.Route {
	return podnet.Route{Node: node, Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
}

func TestRoutes(t *testing.T) {
	legacy := node("legacy", nil, "10.234.0.5")
	legacy.Spec.PodCIDR = "10.235.5.0/24" // spec.podCIDR only, as an older writer sets it

	tests := []struct {
		name  string
		nodes []skiffcorev1.Node
		want  []podnet.Route
	}{
		{
			name: "every other node's podCIDR via its InternalIP, sorted by destination; own node skipped",
			nodes: []skiffcorev1.Node{
				node("n3", []string{"10.235.3.0/24"}, "10.234.0.4"),
				node("self", []string{"10.235.0.0/24"}, "10.234.0.1"),
				node("n2", []string{"10.235.2.0/24"}, "10.234.0.3"),
			},
			want: []podnet.Route{route("n2", "10.235.2.0/24", "10.234.0.3"), route("n3", "10.235.3.0/24", "10.234.0.4")},
		},
		{
			name: "a node without podCIDR (not allocated yet) or without InternalIP gets no route",
			nodes: []skiffcorev1.Node{
				node("new", nil, "10.234.0.2"),
				node("addressless", []string{"10.235.3.0/24"}),
				node("hostname-only", []string{"10.235.4.0/24"}, "host:10.234.0.4"),
			},
		},
		{
			name:  "spec.podCIDR alone, and an unparsable podCIDR or IP is left out",
			nodes: []skiffcorev1.Node{legacy, node("bad-cidr", []string{"10.235.6.0"}, "10.234.0.6"), node("bad-ip", []string{"10.235.7.0/24"}, "10.234.0")},
			want:  []podnet.Route{route("legacy", "10.235.5.0/24", "10.234.0.5")},
		},
		{
			name:  "a podCIDR written as an address in it routes its network",
			nodes: []skiffcorev1.Node{node("n2", []string{"10.235.2.7/24"}, "10.234.0.3")},
			want:  []podnet.Route{route("n2", "10.235.2.0/24", "10.234.0.3")},
		},
		{
			name:  "several podCIDRs (dual stack), each via the InternalIP of its family; the first of a family wins",
			nodes: []skiffcorev1.Node{node("n2", []string{"10.235.2.0/24", "fd00:235:2::/64"}, "fd00:234::3", "10.234.0.3", "10.234.0.33")},
			want:  []podnet.Route{route("n2", "10.235.2.0/24", "10.234.0.3"), route("n2", "fd00:235:2::/64", "fd00:234::3")},
		},
		{
			name:  "an IPv6 podCIDR of a node with only an IPv4 InternalIP gets no route",
			nodes: []skiffcorev1.Node{node("n2", []string{"10.235.2.0/24", "fd00:235:2::/64"}, "10.234.0.3")},
			want:  []podnet.Route{route("n2", "10.235.2.0/24", "10.234.0.3")},
		},
		{name: "no nodes, no routes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := podnet.Routes("self", tt.nodes)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Routes() =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}
