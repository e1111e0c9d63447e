package nodeipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// step is one call on a CIDRSet and what it must return.
type step struct {
	op      string // "alloc", "occupy", "release"
	cidr    string // the argument of occupy/release, or the range alloc must return
	wantErr string // a substring of the error, or "" for success
}

func TestCIDRSet(t *testing.T) {
	cases := []struct {
		name    string
		cluster string
		mask    int
		steps   []step
	}{
		{
			name: "allocates in order", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"alloc", "10.244.0.0/24", ""}, {"alloc", "10.244.1.0/24", ""}, {"alloc", "10.244.2.0/24", ""}},
		},
		{
			name: "skips occupied ranges", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"occupy", "10.244.0.0/24", ""}, {"occupy", "10.244.1.0/24", ""}, {"alloc", "10.244.2.0/24", ""}},
		},
		{
			name: "exhaustion, then a released range is reused", cluster: "10.0.0.0/30", mask: 31,
			steps: []step{
				{"alloc", "10.0.0.0/31", ""}, {"alloc", "10.0.0.2/31", ""},
				{"alloc", "", "no pod CIDRs remaining"},
				{"release", "10.0.0.0/31", ""},
				{"alloc", "10.0.0.0/31", ""},
				{"alloc", "", "no pod CIDRs remaining"},
			},
		},
		{
			name: "a released range is not the next one handed out while others are free", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"alloc", "10.244.0.0/24", ""}, {"release", "10.244.0.0/24", ""}, {"alloc", "10.244.1.0/24", ""}},
		},
		{
			name: "the search wraps around to freed ranges", cluster: "192.168.0.0/24", mask: 26,
			steps: []step{
				{"alloc", "192.168.0.0/26", ""}, {"alloc", "192.168.0.64/26", ""}, {"alloc", "192.168.0.128/26", ""},
				{"release", "192.168.0.64/26", ""},
				{"alloc", "192.168.0.192/26", ""},
				{"alloc", "192.168.0.64/26", ""},
			},
		},
		{
			name: "odd mask: /17 ranges in a /15", cluster: "10.2.0.0/15", mask: 17,
			steps: []step{{"alloc", "10.2.0.0/17", ""}, {"alloc", "10.2.128.0/17", ""}, {"alloc", "10.3.0.0/17", ""}, {"alloc", "10.3.128.0/17", ""}, {"alloc", "", "no pod CIDRs remaining"}},
		},
		{
			name: "mask equal to the cluster prefix: one range", cluster: "10.9.0.0/16", mask: 16,
			steps: []step{{"alloc", "10.9.0.0/16", ""}, {"alloc", "", "no pod CIDRs remaining"}},
		},
		{
			name: "/32 ranges", cluster: "10.1.1.0/31", mask: 32,
			steps: []step{{"alloc", "10.1.1.0/32", ""}, {"alloc", "10.1.1.1/32", ""}, {"alloc", "", "no pod CIDRs remaining"}},
		},
		{
			name: "occupying a larger range marks every range inside it", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"occupy", "10.244.0.0/23", ""}, {"alloc", "10.244.2.0/24", ""}},
		},
		{
			name: "occupying a smaller range marks the range holding it", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"occupy", "10.244.0.128/25", ""}, {"alloc", "10.244.1.0/24", ""}},
		},
		{
			name: "an unmasked range is read as its network", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"occupy", "10.244.0.7/24", ""}, {"alloc", "10.244.1.0/24", ""}},
		},
		{
			name: "ranges outside the cluster CIDR are refused", cluster: "10.244.0.0/16", mask: 24,
			steps: []step{{"occupy", "10.245.0.0/24", "outside the cluster CIDR"}, {"release", "192.168.0.0/24", "outside the cluster CIDR"}, {"occupy", "fd00::/64", "not an IPv4 range"}},
		},
		{
			name: "an unmasked cluster CIDR is read as its network", cluster: "10.244.3.4/16", mask: 24,
			steps: []step{{"alloc", "10.244.0.0/24", ""}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewCIDRSet(netip.MustParsePrefix(tc.cluster), tc.mask)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range tc.steps {
				var got netip.Prefix
				switch st.op {
				case "alloc":
					got, err = s.Allocate()
				case "occupy":
					err = s.Occupy(netip.MustParsePrefix(st.cidr))
				case "release":
					err = s.Release(netip.MustParsePrefix(st.cidr))
				}
				switch {
				case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
					t.Fatalf("step %d %s %s: error %v, want one containing %q", i, st.op, st.cidr, err, st.wantErr)
				case st.wantErr == "" && err != nil:
					t.Fatalf("step %d %s %s: %v", i, st.op, st.cidr, err)
				case st.op == "alloc" && st.wantErr == "" && got.String() != st.cidr:
					t.Fatalf("step %d: allocated %s, want %s", i, got, st.cidr)
				}
			}
		})
	}
}

func TestCIDRSetHandsOutEveryRangeOnce(t *testing.T) {
	s, err := NewCIDRSet(netip.MustParsePrefix("10.244.0.0/16"), 24)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Prefix]bool{}
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	for i := 0; i < 256; i++ {
		p, err := s.Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[p] || !cluster.Contains(p.Addr()) || p.Bits() != 24 {
			t.Fatalf("allocation %d: %s is a duplicate or outside %s", i, p, cluster)
		}
		seen[p] = true
	}
	if _, err := s.Allocate(); !errors.Is(err, ErrNoCIDRsRemaining) {
		t.Fatalf("allocation 257: %v, want ErrNoCIDRsRemaining", err)
	}
	if s.Free() != 0 {
		t.Fatalf("Free() = %d, want 0", s.Free())
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{"10.244.0.0/16", 24}, ""},
		{Config{"10.244.0.0/16", 16}, ""},
		{Config{"10.244.0.0/16", 32}, ""},
		{Config{"10.244.0.0/16", 33}, "--node-cidr-mask-size 33 must be between the cluster CIDR's prefix 16 and 32"},
		{Config{"10.244.0.0/16", 8}, "--node-cidr-mask-size 8 must be between the cluster CIDR's prefix 16 and 32"},
		{Config{"10.244.0.0", 24}, `--cluster-cidr "10.244.0.0"`},
		{Config{"", 24}, `--cluster-cidr ""`},
		{Config{"fd00::/48", 64}, "--cluster-cidr fd00::/48: only an IPv4 range is supported"},
	}
	for _, tc := range cases {
		_, err := newCIDRSet(tc.cfg)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.wantErr)
		}
	}
}
