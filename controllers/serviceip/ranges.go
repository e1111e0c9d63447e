package serviceip

import (
	"fmt"
	"iter"
	"net/netip"
	"strconv"
	"strings"
)

// maxRangeSize bounds a range, as kube-apiserver refuses a service CIDR
// wider than /12: the in-use bitmap is built on every allocation.
const maxRangeSize = 1 << 20

// ipRange is the service CIDR. Offset 0 (the network address) and the last
// offset (the broadcast address) are never handed out, as upstream.
type ipRange struct {
	prefix netip.Prefix
	size   int
}

// parseIPRange reads --service-cluster-ip-range.
func parseIPRange(s string) (ipRange, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return ipRange{}, fmt.Errorf("--service-cluster-ip-range %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return ipRange{}, fmt.Errorf("--service-cluster-ip-range %s: only an IPv4 range is supported", s)
	}
	if p.Bits() < 12 || p.Bits() > 30 {
		return ipRange{}, fmt.Errorf("--service-cluster-ip-range %s: the prefix length must be between /12 and /30", s)
	}
	return ipRange{prefix: p.Masked(), size: 1 << (32 - p.Bits())}, nil
}

// contains reports whether a is an address the range may hand out.
func (r ipRange) contains(a netip.Addr) bool {
	if !r.prefix.Contains(a) {
		return false
	}
	off := r.offset(a)
	return off > 0 && off < r.size-1
}

func (r ipRange) offset(a netip.Addr) int {
	return int(ipv4Uint(a) - ipv4Uint(r.prefix.Addr()))
}

func (r ipRange) at(off int) netip.Addr {
	v := ipv4Uint(r.prefix.Addr()) + uint32(off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// portRange is the node port range, both ends included.
type portRange struct {
	base, size int
}

// parsePortRange reads --service-node-port-range, "30000-32767".
func parsePortRange(s string) (portRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(lo))
	last, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return portRange{}, fmt.Errorf("--service-node-port-range %q: want FIRST-LAST with 1 <= FIRST <= LAST <= 65535, e.g. 30000-32767", s)
	}
	return portRange{base: first, size: last - first + 1}, nil
}

func (r portRange) contains(p int32) bool { return int(p) >= r.base && int(p) < r.base+r.size }
func (r portRange) offset(p int32) int    { return int(p) - r.base }
func (r portRange) at(off int) int32      { return int32(r.base + off) }
func (r portRange) String() string        { return fmt.Sprintf("%d-%d", r.base, r.base+r.size-1) }

// bitmap marks the offsets of a range that are in use. The controller
// builds it from the cache as a hint of where to look: the ledger's
// create-if-absent, not the bitmap, decides who gets a value.
type bitmap struct {
	size  int
	words []uint64
}

func newBitmap(size int) *bitmap {
	return &bitmap{size: size, words: make([]uint64, (size+63)/64)}
}

// set marks off used; offsets outside the range are ignored.
func (b *bitmap) set(off int) {
	if off >= 0 && off < b.size {
		b.words[off/64] |= 1 << (off % 64)
	}
}

func (b *bitmap) has(off int) bool {
	return off >= 0 && off < b.size && b.words[off/64]&(1<<(off%64)) != 0
}

// freeFrom yields the free offsets in order from start, wrapping around
// once. Starting at a random offset keeps two allocators from trying the
// same values in the same order.
func (b *bitmap) freeFrom(start int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range b.size {
			off := (start + i) % b.size
			if !b.has(off) && !yield(off) {
				return
			}
		}
	}
}
