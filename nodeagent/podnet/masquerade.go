package podnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultTable is the nftables table (family inet) of the masquerade rule.
const DefaultTable = "skiff_podnet"

// maxIfName is the kernel's limit on an interface name (IFNAMSIZ-1).
const maxIfName = 15

// Masquerade is what the node's masquerade rule needs: traffic from
// PodCIDR (this node's pods) to anywhere outside ClusterCIDR (every pod of
// every node) leaves with the node's address, so that replies from outside
// the cluster find their way back; traffic to other pods keeps the pod's
// own address, and so does traffic going out through Bridge, back to this
// node's pods.
type Masquerade struct {
	// PodCIDR is this node's IPv4 pod range; the zero Prefix (the control
	// plane has not allocated one yet) renders the table without a rule.
	PodCIDR     netip.Prefix
	ClusterCIDR netip.Prefix
	Bridge      string
}

// Ruleset renders the table for m, in the inet family. Only IPv4 is
// masqueraded: an IPv6 pod range is expected to be routable. It is pure,
// so that the rule can be reviewed on its own.
func Ruleset(table string, m Masquerade) (string, error) {
	if table == "" {
		return "", fmt.Errorf("nftables table name: must not be empty")
	}
	var rule string
	if m.PodCIDR.IsValid() {
		if err := m.validate(); err != nil {
			return "", err
		}
		rule = fmt.Sprintf("\t\tip saddr %s ip daddr != %s oifname != %q masquerade\n", m.PodCIDR.Masked(), m.ClusterCIDR.Masked(), m.Bridge)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", table)
	fmt.Fprintf(&b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n%s\t}\n", rule)
	fmt.Fprintf(&b, "}\n")
	return b.String(), nil
}

// validate checks the parts of a rule nft would otherwise refuse with a
// less helpful message, or accept with a meaning nobody wanted.
func (m Masquerade) validate() error {
	if !m.PodCIDR.Addr().Is4() {
		return fmt.Errorf("podCIDR %s: only IPv4 pod ranges are masqueraded", m.PodCIDR)
	}
	if !m.ClusterCIDR.IsValid() || !m.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %s: must be an IPv4 range (--cluster-cidr), or every pod-to-pod packet would be masqueraded", m.ClusterCIDR)
	}
	if m.Bridge == "" || len(m.Bridge) > maxIfName || strings.ContainsAny(m.Bridge, "\"\\ \t\n") {
		return fmt.Errorf("pod bridge %q: must be an interface name of 1 to %d characters", m.Bridge, maxIfName)
	}
	return nil
}
