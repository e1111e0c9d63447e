// Package nodeport delivers external traffic that reaches a node's address on
// a node port to one of the service's backends, with an nftables table that
// the node agent replaces as a whole on every sync.
//
// Why nftables and not a tc program: the service VIP path, the hot one, is
// socket-level eBPF (package lb) and needs no per-packet state. NodePort
// traffic comes from outside, so it must be translated per packet: every
// packet of a flow must reach the same backend, replies must be translated
// back, and a backend on another node needs the source rewritten to this node
// so that replies return through it. Conntrack already does all three,
// including TCP state, timeouts, ICMP errors and fragments; a tc program would
// have to rebuild a connection tracker and a source NAT with port allocation to
// do the same. The rules are one dnat per node port, so the cost does not grow
// with the number of services.
package nodeport

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultTable is the nftables table (family inet) the node agent owns.
const DefaultTable = "skiff_nodeport"

// masqueradeMark tags a packet that was sent to a backend, so that
// postrouting rewrites its source to the node's address.
const masqueradeMark = 0x00100000

// NodePort sends traffic to Port over Proto on any of the node's addresses
// to one of Backends. Without backends the port refuses connections.
type NodePort struct {
	Port     uint16
	Proto    uint8 // unix.IPPROTO_TCP or unix.IPPROTO_UDP
	Backends []netip.AddrPort
}

// Sync makes table hold exactly ports, in one nftables transaction, so
// traffic never sees a half-written table.
func Sync(table string, ports []NodePort) error {
	ruleset, err := Ruleset(table, ports)
	if err != nil {
		return err
	}
	return Replace(table, ruleset)
}

// Replace makes the inet table hold exactly ruleset, a `table inet <table>
// { ... }` block, in one nftables transaction. It is shared with the other
// parts of the node agent that keep an nftables table of their own (the
// pod network's masquerade rule).
func Replace(table, ruleset string) error {
	return nft(replace(table) + ruleset)
}

// Delete removes the table, and with it every node port.
func Delete(table string) error {
	return nft(replace(table))
}

// replace declares the table, so that deleting it works whether or not it
// exists, then deletes it: what follows in the same transaction starts empty.
func replace(table string) string {
	return fmt.Sprintf("table inet %s\ndelete table inet %s\n", table, table)
}

func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft -f (needs nftables installed and root): %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Ruleset renders the table for ports. The dnat happens in prerouting for
// packets to a local address, so it applies to traffic from other hosts and
// from pods, and in output for the node's own processes; conntrack keeps every later packet of the flow on the same
// backend.
func Ruleset(table string, ports []NodePort) (string, error) {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b NodePort) int { return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto)) })

	var dnat, reject []string
	for _, np := range ports {
		proto, err := protoName(np.Proto)
		if err != nil {
			return "", fmt.Errorf("node port %d: %w", np.Port, err)
		}
		if np.Port == 0 {
			return "", fmt.Errorf("node port must not be 0")
		}
		if len(np.Backends) == 0 {
			reject = append(reject, rejectRule(proto, np.Port))
			continue
		}
		for _, family := range []string{"ip", "ip6"} {
			if rule := dnatRule(family, proto, np); rule != "" {
				dnat = append(dnat, rule)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", table)
	fmt.Fprintf(&b, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump nodeports\n\t}\n")
	// Connections the node opens itself to its own address skip
	// prerouting. Loopback addresses are left alone: a packet from lo
	// DNATed to a pod would be dropped as martian.
	fmt.Fprintf(&b, "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n")
	fmt.Fprintf(&b, "\t\tmeta nfproto ipv4 ip daddr != 127.0.0.0/8 fib daddr type local jump nodeports\n")
	fmt.Fprintf(&b, "\t\tmeta nfproto ipv6 ip6 daddr != ::1 fib daddr type local jump nodeports\n\t}\n")
	fmt.Fprintf(&b, "\tchain nodeports {\n")
	for _, r := range dnat {
		fmt.Fprintf(&b, "\t\t%s\n", r)
	}
	fmt.Fprintf(&b, "\t}\n")
	fmt.Fprintf(&b, "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n")
	for _, r := range reject {
		fmt.Fprintf(&b, "\t\t%s\n", r)
	}
	fmt.Fprintf(&b, "\t}\n")
	fmt.Fprintf(&b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark & %#x == %#x masquerade\n\t}\n", masqueradeMark, masqueradeMark)
	fmt.Fprintf(&b, "}\n")
	return b.String(), nil
}

// dnatRule picks a backend of one IP family at random for a new flow. It is
// empty when the node port has no backend of that family.
func dnatRule(family, proto string, np NodePort) string {
	var targets []string
	for _, be := range sortedBackends(np.Backends) {
		if be.Addr().Unmap().Is4() != (family == "ip") {
			continue
		}
		targets = append(targets, fmt.Sprintf("%d : %s . %d", len(targets), be.Addr().Unmap(), be.Port()))
	}
	if len(targets) == 0 {
		return ""
	}
	nfproto := map[string]string{"ip": "ipv4", "ip6": "ipv6"}[family]
	return fmt.Sprintf("meta nfproto %s %s dport %d meta mark set meta mark or %#x dnat %s addr . port to numgen random mod %d map { %s }",
		nfproto, proto, np.Port, masqueradeMark, family, len(targets), strings.Join(targets, ", "))
}

// rejectRule refuses a node port without backends the way a closed port
// would, even if a host process happens to listen on it.
func rejectRule(proto string, port uint16) string {
	if proto == "tcp" {
		return fmt.Sprintf("tcp dport %d reject with tcp reset", port)
	}
	return fmt.Sprintf("udp dport %d reject", port)
}

func sortedBackends(backends []netip.AddrPort) []netip.AddrPort {
	out := slices.Clone(backends)
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return slices.Compact(out)
}

func protoName(proto uint8) (string, error) {
	switch proto {
	case unix.IPPROTO_TCP:
		return "tcp", nil
	case unix.IPPROTO_UDP:
		return "udp", nil
	}
	return "", fmt.Errorf("protocol must be TCP (%d) or UDP (%d), got %d", unix.IPPROTO_TCP, unix.IPPROTO_UDP, proto)
}
