package serviceip

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseRanges(t *testing.T) {
	for _, tc := range []struct {
		ips, ports string
		wantErr    bool
		size, base int
	}{
		{ips: "10.96.0.0/16", ports: "30000-32767", size: 65536, base: 30000},
		{ips: "10.96.0.5/30", ports: "1-1", size: 4, base: 1},
		{ips: "10.96.0.0/8", ports: "30000-32767", wantErr: true},  // wider than /12
		{ips: "10.96.0.0/31", ports: "30000-32767", wantErr: true}, // no usable address
		{ips: "fd00::/112", ports: "30000-32767", wantErr: true},   // IPv6
		{ips: "10.96.0.0/16", ports: "32767-30000", wantErr: true}, // reversed
		{ips: "10.96.0.0/16", ports: "30000", wantErr: true},       // one number
		{ips: "10.96.0.0/16", ports: "30000-70000", wantErr: true}, // past 65535
	} {
		ips, err1 := parseIPRange(tc.ips)
		ports, err2 := parsePortRange(tc.ports)
		if gotErr := err1 != nil || err2 != nil; gotErr != tc.wantErr {
			t.Errorf("%s %s: errors %v, %v; want an error: %v", tc.ips, tc.ports, err1, err2, tc.wantErr)
			continue
		}
		if !tc.wantErr && (ips.size != tc.size || ports.base != tc.base) {
			t.Errorf("%s %s: size %d base %d, want %d %d", tc.ips, tc.ports, ips.size, ports.base, tc.size, tc.base)
		}
	}
}

func TestIPRangeContains(t *testing.T) {
	r, err := parseIPRange("10.96.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.96.0.0", false}, // network address
		{"10.96.0.1", true},
		{"10.96.0.254", true},
		{"10.96.0.255", false}, // broadcast
		{"10.96.1.1", false},
		{"192.168.0.1", false},
	} {
		if got := r.contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if got := r.at(r.offset(netip.MustParseAddr("10.96.0.77"))); got.String() != "10.96.0.77" {
		t.Errorf("at(offset(10.96.0.77)) = %s", got)
	}
}

func TestBitmapFreeFrom(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		used  []int
		start int
		want  []int
	}{
		{name: "empty from 0", size: 4, start: 0, want: []int{0, 1, 2, 3}},
		{name: "wraps around from the start", size: 4, start: 2, want: []int{2, 3, 0, 1}},
		{name: "skips used", size: 5, used: []int{1, 3}, start: 0, want: []int{0, 2, 4}},
		{name: "full", size: 3, used: []int{0, 1, 2}, start: 1, want: nil},
		{name: "across words", size: 130, used: rangeOf(0, 128), start: 5, want: []int{128, 129}},
		{name: "out of range marks are ignored", size: 2, used: []int{-1, 2}, start: 0, want: []int{0, 1}},
	} {
		b := newBitmap(tc.size)
		for _, u := range tc.used {
			b.set(u)
		}
		if got := slices.Collect(b.freeFrom(tc.start)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: free offsets %v, want %v", tc.name, got, tc.want)
		}
	}
}

func rangeOf(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestHeldNodePortsAnnotation(t *testing.T) {
	svc := newService("ns", "a")
	setHeldNodePorts(svc, []int32{30002, 30001, 30002})
	if got := svc.Annotations[NodePortsAnnotation]; got != "30001,30002" {
		t.Fatalf("annotation %q, want sorted without repeats", got)
	}
	if got := heldNodePorts(svc); !slices.Equal(got, []int32{30001, 30002}) {
		t.Fatalf("read back %v", got)
	}
	setHeldNodePorts(svc, nil)
	if _, ok := svc.Annotations[NodePortsAnnotation]; ok {
		t.Fatal("no node ports must remove the annotation")
	}
}
