package nodeport

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/hosttest"
)

var examplePorts = []NodePort{
	{Port: 30081, Proto: unix.IPPROTO_TCP},
	{Port: 30053, Proto: unix.IPPROTO_UDP, Backends: []netip.AddrPort{netip.MustParseAddrPort("10.244.1.7:53")}},
	{Port: 30080, Proto: unix.IPPROTO_TCP, Backends: []netip.AddrPort{
		netip.MustParseAddrPort("10.244.2.9:8080"),
		netip.MustParseAddrPort("[fd00:244::5]:8080"),
		netip.MustParseAddrPort("10.244.1.5:8080"),
		netip.MustParseAddrPort("10.244.1.5:8080"),
	}},
}

// exampleRuleset is what a reviewer should expect for examplePorts: ports
// sorted, one dnat per port and family, backends sorted and deduplicated, a
// reject for the port without backends.
const exampleRuleset = `table inet test {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump nodeports
	}
	chain output {
		type nat hook output priority -100; policy accept;
		meta nfproto ipv4 ip daddr != 127.0.0.0/8 fib daddr type local jump nodeports
		meta nfproto ipv6 ip6 daddr != ::1 fib daddr type local jump nodeports
	}
	chain nodeports {
		meta nfproto ipv4 udp dport 30053 meta mark set meta mark or 0x100000 dnat ip addr . port to numgen random mod 1 map { 0 : 10.244.1.7 . 53 }
		meta nfproto ipv4 tcp dport 30080 meta mark set meta mark or 0x100000 dnat ip addr . port to numgen random mod 2 map { 0 : 10.244.1.5 . 8080, 1 : 10.244.2.9 . 8080 }
		meta nfproto ipv6 tcp dport 30080 meta mark set meta mark or 0x100000 dnat ip6 addr . port to numgen random mod 1 map { 0 : fd00:244::5 . 8080 }
	}
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 30081 reject with tcp reset
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		meta mark & 0x100000 == 0x100000 masquerade
	}
}
`

func TestRuleset(t *testing.T) {
	got, err := Ruleset("test", examplePorts)
	if err != nil {
		t.Fatal(err)
	}
	if got != exampleRuleset {
		t.Errorf("Ruleset() =\n%s\nwant\n%s", got, exampleRuleset)
	}
}

func TestRulesetRefusesInvalidPorts(t *testing.T) {
	tests := []struct {
		name string
		port NodePort
		want string
	}{
		{"SCTP", NodePort{Port: 30080, Proto: 132}, "protocol must be TCP (6) or UDP (17), got 132"},
		{"port 0", NodePort{Proto: unix.IPPROTO_TCP}, "node port must not be 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Ruleset("test", []NodePort{tt.port})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ruleset() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRulesetIsValidNftables has nft check the rendered rules without
// applying them.
func TestRulesetIsValidNftables(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "nft")
	cmd := exec.Command("nft", "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(replace("test") + exampleRuleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -c rejects the ruleset: %v\n%s", err, out)
	}
}
