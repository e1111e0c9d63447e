// Package nodenet wires several skiff nodes on one machine together, as a
// switch wires the machines of a rack: a Linux bridge on the host holds the
// node network's first address, and each node gets a network namespace of
// its own, linked to the bridge by a veth pair whose node end is eth0. The
// host routes and masquerades the node network's traffic to the outside
// world, so a node's pods reach it through their node as on real machines.
//
// Everything is named after the bridge, so that two node networks (a
// user's `make up` and a test's) live side by side on one machine.
package nodenet

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NetnsDir is where `ip netns add` keeps its named network namespaces, so
// that `ip -n NAME` and `nsenter --net=NetnsDir/NAME` find them.
const NetnsDir = "/run/netns"

// maxLinkName is the longest interface name Linux takes (IFNAMSIZ - 1).
const maxLinkName = 15

// NodeLink is the name of a node's end of its veth pair, inside its netns.
const NodeLink = "eth0"

// Network is one node network: its bridge on the host and its address range.
// Node i (counted from 1) has the range's (1+i)th address; the host has the
// first.
type Network struct {
	Bridge string
	Prefix netip.Prefix
}

// New validates a bridge name and an IPv4 range, as given on a command line.
func New(bridge, cidr string) (Network, error) {
	if bridge == "" || len(bridge) > maxLinkName || strings.ContainsAny(bridge, "/ ") {
		return Network{}, fmt.Errorf("node bridge %q: must be an interface name of 1 to %d characters", bridge, maxLinkName)
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil || !prefix.Addr().Is4() {
		return Network{}, fmt.Errorf("node network %q: must be an IPv4 CIDR such as 10.250.0.0/24", cidr)
	}
	return Network{Bridge: bridge, Prefix: prefix.Masked()}, nil
}

// Capacity is how many nodes the range holds: all of its addresses but the
// network's, the host's and the broadcast address.
func (n Network) Capacity() int {
	hostBits := 32 - n.Prefix.Bits()
	if hostBits >= 16 {
		return 1<<16 - 3 // more nodes than one machine runs anyway
	}
	return max(1<<hostBits-3, 0)
}

// HostIP is the host's address on the bridge: the nodes' default gateway,
// and where they reach the control plane.
func (n Network) HostIP() netip.Addr { return n.Prefix.Addr().Next() }

// NodeIP is node i's address (i counts from 1).
func (n Network) NodeIP(i int) netip.Addr {
	ip := n.HostIP()
	for range i {
		ip = ip.Next()
	}
	return ip
}

// Netns is the name of node i's network namespace.
func (n Network) Netns(i int) string { return n.Bridge + "-" + strconv.Itoa(i) }

// NetnsPath is where node i's network namespace is mounted, the path
// `nsenter --net=` takes.
func (n Network) NetnsPath(i int) string { return filepath.Join(NetnsDir, n.Netns(i)) }

// HostVeth is the name of the host's end of node i's veth pair: the netns's
// name when it fits in an interface name, else one made from a hash of the
// bridge's name.
func (n Network) HostVeth(i int) string {
	if name := n.Netns(i); len(name) <= maxLinkName {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(n.Bridge))
	return fmt.Sprintf("nn%08x-%d", h.Sum32(), i)
}

// MasqueradeTable is the nftables table of the host's masquerade rule.
// nft names take letters, digits and underscores.
func (n Network) MasqueradeTable() string {
	return "skiff_nodenet_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, n.Bridge)
}

// MasqueradeRuleset is the nft script that replaces the masquerade table:
// traffic from the node network leaving through any other interface leaves
// with the host's address, as a home router does for its machines.
func (n Network) MasqueradeRuleset() string {
	t := n.MasqueradeTable()
	return fmt.Sprintf(`table ip %[1]s
delete table ip %[1]s
table ip %[1]s {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[2]s oifname != "%[3]s" masquerade
	}
}
`, t, n.Prefix, n.Bridge)
}

// Setup creates the host's side: the bridge with the host's address, IPv4
// forwarding and the masquerade table. Whatever an earlier run left of them
// is replaced.
func (n Network) Setup() error {
	if err := n.deleteBridge(); err != nil {
		return err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("creating the node bridge %s: %w", n.Bridge, err)
	}
	if err := netlink.AddrAdd(br, n.addr(n.HostIP())); err != nil {
		return fmt.Errorf("addressing the node bridge %s: %w", n.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return fmt.Errorf("bringing up the node bridge %s: %w", n.Bridge, err)
	}
	if err := enableForwarding(); err != nil {
		return err
	}
	return nft(n.MasqueradeRuleset())
}

// Teardown removes the host's side: the masquerade table and the bridge.
// Nodes go first (DeleteNode).
func (n Network) Teardown() error {
	t := n.MasqueradeTable()
	return errors.Join(nft(fmt.Sprintf("table ip %[1]s\ndelete table ip %[1]s\n", t)), n.deleteBridge())
}

// AddNode creates node i's network namespace and links it to the bridge: its
// eth0 has the node's address and a default route through the host, and lo
// is up. A netns of the same name left by an earlier run is deleted first,
// as a reboot clears a machine's network.
func (n Network) AddNode(i int) error {
	if i < 1 || i > n.Capacity() {
		return fmt.Errorf("node %d: the node network %s holds nodes 1 to %d", i, n.Prefix, n.Capacity())
	}
	if err := n.DeleteNode(i); err != nil {
		return err
	}
	if err := ip("netns", "add", n.Netns(i)); err != nil {
		return err
	}
	ns, err := netns.GetFromPath(n.NetnsPath(i))
	if err != nil {
		return err
	}
	defer ns.Close()
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("node bridge %s (Setup creates it): %w", n.Bridge, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.HostVeth(i), MasterIndex: br.Attrs().Index},
		PeerName:      NodeLink,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("linking node %d to %s: %w", i, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	if err := n.configureNode(ns, i); err != nil {
		return fmt.Errorf("configuring the network of node %d in netns %s: %w", i, n.Netns(i), err)
	}
	// A node forwards its pods' traffic, as a kubelet's machine does.
	return inNetns(ns, enableForwarding)
}

// configureNode addresses node i's eth0 and brings up its links, through a
// netlink handle in the node's netns.
func (n Network) configureNode(ns netns.NsHandle, i int) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, name := range []string{"lo", NodeLink} {
		link, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(link); err != nil {
			return err
		}
	}
	eth, err := h.LinkByName(NodeLink)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(eth, n.addr(n.NodeIP(i))); err != nil {
		return err
	}
	gw := net.IP(n.HostIP().AsSlice())
	return h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw})
}

// DeleteNode removes node i's veth pair and network namespace, and with the
// netns everything the node created in it: its pods' bridge, routes and
// nftables tables. A node that does not exist is not an error.
func (n Network) DeleteNode(i int) error {
	var errs []error
	// Deleting the host's end takes the node's eth0 with it at once, where
	// the netns's own teardown may finish later.
	if link, err := netlink.LinkByName(n.HostVeth(i)); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", n.HostVeth(i), err))
		}
	}
	if _, err := os.Stat(n.NetnsPath(i)); err == nil {
		errs = append(errs, ip("netns", "delete", n.Netns(i)))
	}
	return errors.Join(errs...)
}

// Nodes lists the nodes whose network namespace exists, such as those an
// earlier run that crashed left behind.
func (n Network) Nodes() ([]int, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var nodes []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), n.Bridge+"-")
		if i, err := strconv.Atoi(rest); ok && err == nil && i >= 1 && n.Netns(i) == e.Name() {
			nodes = append(nodes, i)
		}
	}
	return nodes, nil
}

func (n Network) addr(ip netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(n.Prefix.Bits(), 32)}}
}

func (n Network) deleteBridge() error {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return nil // none
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s is a %s, not a bridge: choose another --node-bridge", n.Bridge, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("deleting the node bridge %s: %w", n.Bridge, err)
	}
	return nil
}

// enableForwarding turns IPv4 forwarding on in the calling thread's netns.
func enableForwarding() error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding (needs root): %w", err)
	}
	return nil
}

// inNetns runs fn on an OS thread that has entered ns, for what only the
// calling thread's netns decides, such as /proc/sys/net, and brings the
// thread back. A thread that cannot come back stays locked, so that Go
// ends it with the goroutine rather than reuse it in the wrong netns.
// Threads must not end otherwise: a child started with Pdeathsig from a
// thread that ends is killed with it.
func inNetns(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering netns: %w", err)
			return
		}
		err = fn()
		if netns.Set(home) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// ip runs the ip command, which creates named netns the way every tool
// expects (a bind mount under NetnsDir, itself a shared mount point).
func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nft runs an nft script in one transaction.
func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f (needs nftables installed and root): %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
