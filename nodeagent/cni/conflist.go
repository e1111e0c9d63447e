package cni

import (
	"encoding/json"
	"fmt"
	"net"
)

// NetworkName is the name of skiff's pod network, the `name` of its
// conflist. libcni keys its cache by it, so it must not change between
// versions of the agent: pods set up by one are torn down by the next.
const NetworkName = "skiff"

// loopbackNetworkName names the network that only brings up a pod's lo.
const loopbackNetworkName = "skiff-loopback"

// cniVersion is the CNI spec version of skiff's configs. Debian's
// containernetworking-plugins 1.1.1 speak up to 1.0.0, and 1.0.0 is the
// first version whose DEL gets the cached result, which portmap needs to find
// its rules again.
const cniVersion = "1.0.0"

// maxBridgeName is the kernel's limit on an interface name (IFNAMSIZ-1).
const maxBridgeName = 15

// RenderConfList renders skiff's pod network for one node: the bridge plugin
// gives each pod a veth on bridge, an IPv4 address from podCIDR (host-local,
// which keeps its leases under ipamDataDir) and a default route through the
// bridge, which is the pods' gateway; portmap then publishes the pod's hostPorts. mtu 0 keeps the bridge
// plugin's default. forceAddress lets a new podCIDR replace the bridge's old
// gateway address instead of failing every ADD; pods of the old range then
// lose their way off the node until they are recreated, which only happens
// when a node is registered again, since Kubernetes keeps a Node's podCIDR
// once set. It is pure so that the JSON handed to the plugins can be
// reviewed and tested on its own.
func RenderConfList(podCIDR, bridge string, mtu int, ipamDataDir string) ([]byte, error) {
	subnet, err := podSubnet(podCIDR)
	if err != nil {
		return nil, err
	}
	if bridge == "" || len(bridge) > maxBridgeName {
		return nil, fmt.Errorf("bridge name %q: must be 1 to %d characters", bridge, maxBridgeName)
	}
	if mtu < 0 {
		return nil, fmt.Errorf("mtu: must be >= 0 (0 keeps the default), got %d", mtu)
	}
	if ipamDataDir == "" {
		return nil, fmt.Errorf("ipam data dir: must be set, or host-local would keep its leases in /var/lib/cni")
	}
	list := confList{
		CNIVersion: cniVersion,
		Name:       NetworkName,
		Plugins: []any{
			bridgePlugin{
				Type:         "bridge",
				Bridge:       bridge,
				IsGateway:    true,
				ForceAddress: true,
				// No masquerade here: the bridge plugin's would NAT
				// pod-to-pod traffic between nodes too, with a chain per
				// pod. The agent masquerades only what leaves the cluster
				// (nodeagent/podnet).
				IPMasq:      false,
				HairpinMode: true,
				MTU:         mtu,
				IPAM: hostLocalIPAM{
					Type:    "host-local",
					Ranges:  [][]ipamRange{{{Subnet: subnet}}},
					Routes:  []ipamRoute{{Dst: "0.0.0.0/0"}},
					DataDir: ipamDataDir,
				},
			},
			portmapPlugin{
				Type:         "portmap",
				Capabilities: map[string]bool{"portMappings": true},
				SNAT:         true,
			},
		},
	}
	return json.MarshalIndent(list, "", "  ")
}

// loopbackConf is the network that brings up a pod's lo. It is separate from
// the conflist because the loopback plugin configures the interface it is
// given (lo) while the others configure eth0.
func loopbackConf() []byte {
	return []byte(`{"cniVersion": "` + cniVersion + `", "name": "` + loopbackNetworkName + `", "type": "loopback"}`)
}

// podSubnet checks that cidr is an IPv4 network and returns it in canonical
// form: host-local wants the network address, while a podCIDR written by
// hand may carry host bits ("10.244.1.7/24").
func podSubnet(cidr string) (string, error) {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("podCIDR %q: must be an IPv4 CIDR such as 10.244.1.0/24: %w", cidr, err)
	}
	if ipnet.IP.To4() == nil {
		return "", fmt.Errorf("podCIDR %q: must be IPv4; skiff's pod network has no IPv6 yet", cidr)
	}
	if ones, _ := ipnet.Mask.Size(); ones > 30 {
		return "", fmt.Errorf("podCIDR %q: must be /30 or wider, to leave room for the gateway and a pod", cidr)
	}
	return ipnet.String(), nil
}

// renderedPodCIDR is the podCIDR a conflist of RenderConfList was rendered
// for, or "" when body is not one.
func renderedPodCIDR(body []byte) string {
	var list struct {
		Plugins []struct {
			IPAM *hostLocalIPAM `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(body, &list) != nil {
		return ""
	}
	for _, p := range list.Plugins {
		if p.IPAM != nil && len(p.IPAM.Ranges) > 0 && len(p.IPAM.Ranges[0]) > 0 {
			return p.IPAM.Ranges[0][0].Subnet
		}
	}
	return ""
}

// The types below are the parts of the plugins' configs that skiff sets,
// so that the rendered JSON keeps a fixed field order.

type confList struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type bridgePlugin struct {
	Type         string        `json:"type"`
	Bridge       string        `json:"bridge"`
	IsGateway    bool          `json:"isGateway"`
	ForceAddress bool          `json:"forceAddress"`
	IPMasq       bool          `json:"ipMasq"`
	HairpinMode  bool          `json:"hairpinMode"`
	MTU          int           `json:"mtu,omitempty"`
	IPAM         hostLocalIPAM `json:"ipam"`
}

type hostLocalIPAM struct {
	Type    string        `json:"type"`
	Ranges  [][]ipamRange `json:"ranges"`
	Routes  []ipamRoute   `json:"routes"`
	DataDir string        `json:"dataDir"`
}

type ipamRange struct {
	Subnet string `json:"subnet"`
}

type ipamRoute struct {
	Dst string `json:"dst"`
}

type portmapPlugin struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}
