package podnet_test

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/rand"

	"skiff.dev/skiff/nodeagent/podnet"
)

var update = flag.Bool("update", false, "rewrite the golden rulesets in testdata/")

// masquerade is the rule of a node whose pods are podCIDR.
func masquerade(podCIDR string) podnet.Masquerade {
	m := podnet.Masquerade{ClusterCIDR: netip.MustParsePrefix(clusterCIDR), Bridge: "cni0"}
	if podCIDR != "" {
		m.PodCIDR = netip.MustParsePrefix(podCIDR)
	}
	return m
}

// TestRuleset renders the table for each case and compares it with
// testdata/<golden>.nft, which a reviewer reads as the rule the node gets.
func TestRuleset(t *testing.T) {
	tests := []struct {
		golden string
		m      podnet.Masquerade
	}{
		// Pods to outside the cluster leave as the node; to other pods,
		// and back into the bridge, they keep their address.
		{"podcidr-allocated", masquerade("10.235.1.0/24")},
		// No podCIDR, no pods: an empty chain.
		{"no-podcidr-yet", masquerade("")},
		// Written as an address, the podCIDR is masked to its network.
		{"podcidr-as-address", masquerade("10.235.1.9/24")},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := podnet.Ruleset(podnet.DefaultTable, tt.m)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden+".nft")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Ruleset() differs from %s (run with -update if the change is intended):\n%s", path, got)
			}
		})
	}
}

func TestRulesetRefusesWhatNftWouldMisread(t *testing.T) {
	tests := []struct {
		name  string
		table string
		m     podnet.Masquerade
		want  string
	}{
		{"no table", "", masquerade("10.235.1.0/24"), "nftables table name: must not be empty"},
		{"IPv6 podCIDR", podnet.DefaultTable, masquerade("fd00:235:1::/64"), "only IPv4 pod ranges are masqueraded"},
		{"no cluster CIDR", podnet.DefaultTable, podnet.Masquerade{PodCIDR: netip.MustParsePrefix("10.235.1.0/24"), Bridge: "cni0"}, "must be an IPv4 range (--cluster-cidr)"},
		{"IPv6 cluster CIDR", podnet.DefaultTable, podnet.Masquerade{PodCIDR: netip.MustParsePrefix("10.235.1.0/24"), ClusterCIDR: netip.MustParsePrefix("fd00::/48"), Bridge: "cni0"}, "must be an IPv4 range"},
		{"no bridge", podnet.DefaultTable, podnet.Masquerade{PodCIDR: netip.MustParsePrefix("10.235.1.0/24"), ClusterCIDR: netip.MustParsePrefix(clusterCIDR)}, `pod bridge ""`},
		{"bridge name too long", podnet.DefaultTable, podnet.Masquerade{PodCIDR: netip.MustParsePrefix("10.235.1.0/24"), ClusterCIDR: netip.MustParsePrefix(clusterCIDR), Bridge: "a-very-long-bridge"}, "1 to 15 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := podnet.Ruleset(tt.table, tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ruleset() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestMasqueradeTableInANetns applies the table for real in a throwaway
// network namespace, lists it back through nft, replaces it when the
// podCIDR changes, and removes it, leaving the namespace's other tables
// alone.
func TestMasqueradeTableInANetns(t *testing.T) {
	ns := newNetns(t)
	table := "skiff_podnet_" + rand.String(6)
	inNetns(t, ns, "nft", "add", "table", "inet", "someone_else")

	if err := ns.SyncMasquerade(table, masquerade("10.235.1.0/24")); err != nil {
		t.Fatal(err)
	}
	listed := inNetns(t, ns, "nft", "list", "table", "inet", table)
	for _, want := range []string{
		"type nat hook postrouting priority srcnat; policy accept;",
		`ip saddr 10.235.1.0/24 ip daddr != 10.235.0.0/16 oifname != "cni0" masquerade`,
	} {
		if !strings.Contains(listed, want) {
			t.Errorf("nft list table inet %s =\n%s\nwant it to contain %q", table, listed, want)
		}
	}

	// A new podCIDR replaces the rule in one transaction: one rule, the new one.
	if err := ns.SyncMasquerade(table, masquerade("10.235.7.0/24")); err != nil {
		t.Fatal(err)
	}
	listed = inNetns(t, ns, "nft", "list", "table", "inet", table)
	if strings.Count(listed, "masquerade") != 1 || !strings.Contains(listed, "ip saddr 10.235.7.0/24 ") {
		t.Errorf("after the podCIDR changed, nft list table inet %s =\n%s\nwant exactly the rule for 10.235.7.0/24", table, listed)
	}

	if err := ns.Remove(table); err != nil {
		t.Fatal(err)
	}
	tables := inNetns(t, ns, "nft", "list", "tables")
	if strings.Contains(tables, table) || !strings.Contains(tables, "someone_else") {
		t.Errorf("after Remove, nft list tables =\n%s\nwant %s gone and someone_else kept", tables, table)
	}
	// Removing what is not there is not an error: a node may leave twice.
	if err := ns.Remove(table); err != nil {
		t.Errorf("Remove of a removed table: %v", err)
	}
}
