package lb

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestAssignSlots(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.1:80")
	b := netip.MustParseAddrPort("10.0.0.2:80")
	c := netip.MustParseAddrPort("10.0.0.3:80")
	d := netip.MustParseAddrPort("10.0.0.4:80")
	tests := []struct {
		name      string
		old, want []netip.AddrPort
		slots     []netip.AddrPort
	}{
		{"new service takes the given order", nil, []netip.AddrPort{b, a}, []netip.AddrPort{b, a}},
		{"same set keeps the programmed order", []netip.AddrPort{a, b, c}, []netip.AddrPort{c, b, a}, []netip.AddrPort{a, b, c}},
		{"a removed backend's slot goes to a new one", []netip.AddrPort{a, b, c}, []netip.AddrPort{a, c, d}, []netip.AddrPort{a, d, c}},
		{"a backend in a vanished slot moves", []netip.AddrPort{a, b, c}, []netip.AddrPort{c, a}, []netip.AddrPort{a, c}},
		{"growing appends", []netip.AddrPort{a}, []netip.AddrPort{d, a}, []netip.AddrPort{a, d}},
		{"duplicates are dropped", nil, []netip.AddrPort{a, a, b}, []netip.AddrPort{a, b}},
		{"no backends", []netip.AddrPort{a}, nil, []netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := assignSlots(tt.old, tt.want); !slices.Equal(got, tt.slots) {
				t.Errorf("assignSlots(%v, %v) = %v, want %v", tt.old, tt.want, got, tt.slots)
			}
		})
	}
}

func TestAddressEncoding(t *testing.T) {
	for _, s := range []string{"10.99.0.1", "::1", "fd00::99:1", "0.0.0.0"} {
		a := netip.MustParseAddr(s)
		if got := addrOf(addrTo(a)); got != a {
			t.Errorf("addrOf(addrTo(%s)) = %s", a, got)
		}
	}
	// The socket hooks read addresses as network-order words: 10.99.0.1 must
	// sit in memory as the bytes 10, 99, 0, 1 after the ::ffff: prefix.
	k := svcKeyOf(netip.MustParseAddr("10.99.0.1"), 0x1f90, TCP)
	if w := k.Vip.W; w[0] != 0 || w[1] != 0 || w[2] != 0xffff0000 || w[3] != 0x0100630a {
		t.Errorf("IPv4 VIP words = %#x, want [0 0 0xffff0000 0x0100630a]", w)
	}
	if k.Port != 0x901f {
		t.Errorf("port 0x1f90 in network order = %#x, want 0x901f", k.Port)
	}
}

func TestCIDRKey(t *testing.T) {
	tests := []struct {
		prefix string
		bits   uint32
		addr   string
	}{
		{"10.99.0.0/16", 112, "10.99.0.0"},
		{"10.99.7.1/16", 112, "10.99.0.0"},
		{"fd00:99::/108", 108, "fd00:99::"},
	}
	for _, tt := range tests {
		k := cidrKeyOf(netip.MustParsePrefix(tt.prefix))
		if k.Prefixlen != tt.bits || addrOf(k.Addr) != netip.MustParseAddr(tt.addr) {
			t.Errorf("cidrKeyOf(%s) = /%d %s, want /%d %s", tt.prefix, k.Prefixlen, addrOf(k.Addr), tt.bits, tt.addr)
		}
	}
}

func TestValidate(t *testing.T) {
	vip := netip.MustParseAddr("10.99.0.1")
	be := netip.MustParseAddrPort("10.0.0.1:8080")
	tests := []struct {
		name    string
		svc     Service
		wantErr bool
	}{
		{"valid", Service{VIP: vip, Port: 80, Proto: TCP, Backends: []netip.AddrPort{be}}, false},
		{"no backends is valid", Service{VIP: vip, Port: 80, Proto: UDP}, false},
		{"missing VIP", Service{Port: 80, Proto: TCP}, true},
		{"missing port", Service{VIP: vip, Proto: TCP}, true},
		{"SCTP", Service{VIP: vip, Port: 80, Proto: 132}, true},
		{"negative affinity", Service{VIP: vip, Port: 80, Proto: TCP, Affinity: -time.Second}, true},
		{"backend without port", Service{VIP: vip, Port: 80, Proto: TCP, Backends: []netip.AddrPort{netip.AddrPortFrom(be.Addr(), 0)}}, true},
		{"IPv6 backend for an IPv4 VIP", Service{VIP: vip, Port: 80, Proto: TCP, Backends: []netip.AddrPort{netip.MustParseAddrPort("[fd00::1]:80")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.svc.validate(); (err != nil) != tt.wantErr {
				t.Errorf("validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
