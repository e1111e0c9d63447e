package uptest

import (
	"slices"
	"strings"
	"testing"
)

var networkConfig = ClusterConfig{
	Nodes: 3, Prefix: "skne2e", NodeNetwork: "10.251.0.0/24",
	ClusterCIDR: "10.248.0.0/16", ServiceCIDR: "10.98.0.0/16",
	AgentPort: 29082, WorkPrefix: "skiff-e2e-network-",
}

// up gets the cluster's private names, ranges and ports, and the bridges
// derived from its prefix.
func TestUpArgs(t *testing.T) {
	bins := Binaries{Up: "/w/up", Manager: "/w/manager", NodeAgent: "/w/nodeagent"}
	args := networkConfig.upArgs("/repo", "/w/state", bins, [3]int{31000, 31002, 31004})
	for _, tc := range []struct{ flag, want string }{
		{"nodes", "3"},
		{"node-name", "skne2e"},
		{"node-bridge", "skne2e0"},
		{"cni-bridge", "skne2ecni0"},
		{"node-network", "10.251.0.0/24"},
		{"cluster-cidr", "10.248.0.0/16"},
		{"service-cidr", "10.98.0.0/16"},
		{"nodeagent-port", "29082"},
		{"state-dir", "/w/state"},
		{"bin", "/repo/bin"},
		{"manager", "/w/manager"},
		{"nodeagent", "/w/nodeagent"},
		{"port", "31000"},
		{"etcd-port", "31002"},
		{"manager-port", "31004"},
	} {
		if got := FlagValue(args, tc.flag); got != tc.want {
			t.Errorf("--%s = %q, want %q (args %q)", tc.flag, got, tc.want, args)
		}
	}
	// "" applies no samples: the flag must be there, empty, or up applies its own.
	if !slices.Contains(args, "--samples=") {
		t.Errorf("args %q lack --samples=, which keeps up from applying its samples", args)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*ClusterConfig)
		wantErr string
	}{
		{"the network suite's", func(*ClusterConfig) {}, ""},
		{"no nodes", func(c *ClusterConfig) { c.Nodes = 0 }, "Nodes"},
		{"no prefix", func(c *ClusterConfig) { c.Prefix = "" }, "Prefix"},
		{"no work prefix", func(c *ClusterConfig) { c.WorkPrefix = "" }, "WorkPrefix"},
		{"a bare pattern", func(c *ClusterConfig) { c.WorkPrefix = "*" }, "WorkPrefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := networkConfig
			tc.change(&cfg)
			err := cfg.validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("validate() = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}

// The leftovers check finds the cluster's own netns, links, tables and
// mounts, and nothing of a user's `make up` (vm-1.., skiffnet0) beside it.
func TestLinesNamingFindsOnlyTheClustersOwn(t *testing.T) {
	names := networkConfig.ownNames()
	for _, tc := range []struct {
		what, listing string
		want          int
	}{
		{"network namespaces", "skiffnet0-1 (id: 0)\nskne2e0-1 (id: 3)\nskne2e0-2 (id: 4)\n", 2},
		{"links", "1: lo: <LOOPBACK,UP>\n7: skiffnet0: <BROADCAST>\n9: skne2e0: <BROADCAST>\n", 1},
		{"nftables tables", "table inet skiff_nodeport_skiffcni0\ntable inet skiff_podnet_skne2ecni0\n", 1},
		{"mounts", "bpffs /tmp/skiff-e2e-network-123/state/bpf bpf rw 0 0\ntmpfs /run tmpfs rw 0 0\n", 1},
		{"links", "1: lo: <LOOPBACK,UP>\n7: skiffnet0: <BROADCAST>\n", 0},
	} {
		errs := linesNaming(tc.what, tc.listing, names)
		if len(errs) != tc.want {
			t.Errorf("%s %q: %d leftovers %v, want %d", tc.what, tc.listing, len(errs), errs, tc.want)
		}
		for _, err := range errs {
			if !strings.HasPrefix(err.Error(), tc.what+" left after up stopped: ") {
				t.Errorf("leftover %q does not say what it is", err)
			}
		}
	}
}

// A MkdirTemp pattern's random part is not part of the name to look for.
func TestOwnNamesCutTheWorkPattern(t *testing.T) {
	cfg := networkConfig
	cfg.WorkPrefix = "skiff-e2e-*-tour"
	if got, want := cfg.ownNames(), []string{"skne2e0", "skne2ecni0", "skiff-e2e-"}; !slices.Equal(got, want) {
		t.Errorf("ownNames() = %q, want %q", got, want)
	}
}
