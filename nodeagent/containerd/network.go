package containerd

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/cni"
)

// cniNetwork is Network over nodeagent/cni: a network namespace per pod on
// the node's bridge, addresses from the podCIDR, hostPorts through portmap.
type cniNetwork struct{ n *cni.Network }

// NewCNINetwork sets up pod networking with the CNI plugins, keeping its
// state (network namespaces, IPAM leases, libcni's cache) in stateDir.
func NewCNINetwork(cfg cni.Config) (Network, error) {
	n, err := cni.New(cfg)
	if err != nil {
		return nil, err
	}
	return &cniNetwork{n: n}, nil
}

func (c *cniNetwork) SetPodCIDR(cidr string) error {
	if cidr == c.n.PodCIDR() {
		return nil
	}
	return c.n.SetPodCIDR(cidr)
}

func (c *cniNetwork) Status() error { return c.n.Status() }

func (c *cniNetwork) Setup(ctx context.Context, pod *skiffcorev1.Pod) (string, string, error) {
	res, err := c.n.Setup(ctx, cni.PodRef{UID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name}, hostPorts(pod))
	if err != nil {
		return "", "", err
	}
	return res.NetNSPath, res.IP.String(), nil
}

func (c *cniNetwork) Teardown(ctx context.Context, uid types.UID) error {
	return c.n.Teardown(ctx, string(uid))
}

func (c *cniNetwork) List() ([]types.UID, error) {
	uids, err := c.n.List()
	out := make([]types.UID, 0, len(uids))
	for _, u := range uids {
		out = append(out, types.UID(u))
	}
	return out, err
}

// hostPorts lists the container ports that ask for a port on the node.
func hostPorts(pod *skiffcorev1.Pod) []cni.PortMapping {
	var out []cni.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			out = append(out, cni.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(proto), HostIP: p.HostIP})
		}
	}
	return out
}
