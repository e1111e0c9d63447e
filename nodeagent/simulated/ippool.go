package simulated

import (
	"fmt"
	"net/netip"
)

// ipPool hands out pod IPs from a node's podCIDR. The network address and
// the first host address (the bridge's gateway on a real node) are never
// handed out, nor an IPv4 range's broadcast address.
type ipPool struct {
	prefix netip.Prefix
	used   map[netip.Addr]bool
	next   netip.Addr
}

func newIPPool(cidr string) (*ipPool, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("podCIDR %q: %w", cidr, err)
	}
	prefix = prefix.Masked()
	return &ipPool{prefix: prefix, used: map[netip.Addr]bool{}, next: prefix.Addr().Next().Next()}, nil
}

// allocate returns a free address, searching on from the last one handed
// out so that a released address is not reused at once.
func (p *ipPool) allocate() (netip.Addr, error) {
	start := p.next
	for a := start; ; {
		if p.usable(a) && !p.used[a] {
			p.used[a] = true
			p.next = a.Next()
			return a, nil
		}
		a = a.Next()
		if !p.prefix.Contains(a) {
			a = p.prefix.Addr().Next().Next()
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("podCIDR %s has no free address left", p.prefix)
		}
	}
}

func (p *ipPool) release(a netip.Addr) { delete(p.used, a) }

// usable reports whether a may be given to a pod.
func (p *ipPool) usable(a netip.Addr) bool {
	if !p.prefix.Contains(a) || a == p.prefix.Addr() || a == p.prefix.Addr().Next() {
		return false
	}
	if a.Is4() {
		next := a.Next()
		return next.IsValid() && p.prefix.Contains(next) // not the broadcast address
	}
	return true
}
