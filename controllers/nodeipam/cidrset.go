package nodeipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrNoCIDRsRemaining is returned by Allocate when every range of the
// cluster CIDR is in use.
var ErrNoCIDRsRemaining = errors.New("no pod CIDRs remaining in the cluster CIDR")

// CIDRSet hands out the equally sized IPv4 ranges ("subnets") that a cluster
// CIDR splits into, never the same one twice until it is released. It is
// pure bookkeeping, not safe for concurrent use: the controller serializes
// its calls.
type CIDRSet struct {
	cluster  netip.Prefix
	maskSize int
	// count is how many subnets the cluster CIDR holds.
	count uint64
	// used holds the indexes of the subnets given out. A map rather than a
	// bitmap keeps memory proportional to the nodes, whatever the mask.
	used map[uint64]struct{}
	// next is where the search for a free subnet starts, so that a released
	// range is not handed out again at once (which would confuse a node
	// agent still tearing down the old node's routes).
	next uint64
}

// NewCIDRSet splits cluster into subnets of prefix length maskSize.
func NewCIDRSet(cluster netip.Prefix, maskSize int) (*CIDRSet, error) {
	if !cluster.IsValid() || !cluster.Addr().Is4() {
		return nil, fmt.Errorf("cluster CIDR %s: only an IPv4 range is supported", cluster)
	}
	cluster = cluster.Masked()
	if maskSize < cluster.Bits() || maskSize > 32 {
		return nil, fmt.Errorf("node CIDR mask size %d must be between the cluster CIDR's prefix %d and 32", maskSize, cluster.Bits())
	}
	return &CIDRSet{
		cluster:  cluster,
		maskSize: maskSize,
		count:    uint64(1) << (maskSize - cluster.Bits()),
		used:     map[uint64]struct{}{},
	}, nil
}

// Allocate returns a free subnet and marks it used.
func (s *CIDRSet) Allocate() (netip.Prefix, error) {
	for i := uint64(0); i < s.count; i++ {
		idx := (s.next + i) % s.count
		if _, taken := s.used[idx]; taken {
			continue
		}
		s.used[idx] = struct{}{}
		s.next = (idx + 1) % s.count
		return s.subnet(idx), nil
	}
	return netip.Prefix{}, ErrNoCIDRsRemaining
}

// Occupy marks every subnet that p overlaps as used: a node registered with
// a podCIDR of its own keeps it, whatever its size. A range outside the
// cluster CIDR is refused, since nothing here could collide with it.
func (s *CIDRSet) Occupy(p netip.Prefix) error {
	first, last, err := s.indexRange(p)
	if err != nil {
		return err
	}
	for idx := first; idx <= last; idx++ {
		s.used[idx] = struct{}{}
	}
	return nil
}

// Release frees every subnet that p overlaps, once its node is gone.
func (s *CIDRSet) Release(p netip.Prefix) error {
	first, last, err := s.indexRange(p)
	if err != nil {
		return err
	}
	for idx := first; idx <= last; idx++ {
		delete(s.used, idx)
	}
	return nil
}

// Free is how many subnets remain.
func (s *CIDRSet) Free() uint64 { return s.count - uint64(len(s.used)) }

// subnet is the idx-th subnet of the cluster CIDR.
func (s *CIDRSet) subnet(idx uint64) netip.Prefix {
	base := addrToUint32(s.cluster.Addr())
	addr := base + uint32(idx<<(32-s.maskSize))
	return netip.PrefixFrom(uint32ToAddr(addr), s.maskSize)
}

// indexRange returns the indexes of the first and last subnets that p
// overlaps.
func (s *CIDRSet) indexRange(p netip.Prefix) (first, last uint64, err error) {
	if !p.IsValid() || !p.Addr().Is4() {
		return 0, 0, fmt.Errorf("%s is not an IPv4 range", p)
	}
	p = p.Masked()
	if !s.cluster.Overlaps(p) {
		return 0, 0, fmt.Errorf("%s is outside the cluster CIDR %s", p, s.cluster)
	}
	// The part of p inside the cluster CIDR: p itself when it is smaller,
	// the whole cluster CIDR when p contains it.
	if p.Bits() < s.cluster.Bits() {
		p = s.cluster
	}
	base := addrToUint32(s.cluster.Addr())
	start := addrToUint32(p.Addr()) - base
	end := start + uint32((uint64(1)<<(32-p.Bits()))-1)
	shift := 32 - s.maskSize
	return uint64(start >> shift), uint64(end >> shift), nil
}

func addrToUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uint32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
