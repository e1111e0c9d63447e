package lb

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The protocols a Service can balance.
const (
	TCP uint8 = unix.IPPROTO_TCP
	UDP uint8 = unix.IPPROTO_UDP
)

// Service is one balanced address: connections to VIP:Port over Proto go to
// one of Backends. An empty Backends refuses connections, as a Service
// without ready endpoints must.
type Service struct {
	VIP      netip.Addr
	Port     uint16
	Proto    uint8 // TCP or UDP
	Backends []netip.AddrPort
	// Affinity is the ClientIP session affinity timeout: a client keeps its
	// backend until it stays away this long. Zero turns affinity off. The
	// datapath counts in whole seconds, rounding up.
	Affinity time.Duration
}

// Counters are the datapath's totals since it was first loaded.
type Counters struct {
	Translated uint64 // sockets sent to a backend
	NoBackend  uint64 // refused: the service has no backends
	UnknownVIP uint64 // refused: inside a service CIDR but no service
	ReverseNAT uint64 // replies and getpeername shown as the VIP
}

// SetService programs svc, replacing what was programmed for its VIP, port and
// protocol. The update is ordered so that no connection sees half of it: the
// new backends go into a fresh service id, then the service entry flips to that
// id in one map write, then the old id's backends are deleted (a connection
// that read the old entry just before retries once). A backend that stays
// keeps its slot, so ClientIP affinity survives unrelated endpoint changes.
func (lb *LoadBalancer) SetService(svc Service) error {
	if err := svc.validate(); err != nil {
		return err
	}
	key := svcKeyOf(svc.VIP, svc.Port, svc.Proto)
	affinity := uint32(math.Ceil(svc.Affinity.Seconds()))

	lb.mu.Lock()
	defer lb.mu.Unlock()
	old, oldBackends, found, err := lb.lookup(key)
	if err != nil {
		return err
	}
	backends := assignSlots(oldBackends, svc.Backends)
	if found && old.AffinitySec == affinity && slices.Equal(backends, oldBackends) {
		return nil
	}

	id := lb.allocateID()
	for slot, be := range backends {
		if err := lb.objs.LbBackends.Update(backendKey(id, slot), backendOf(be), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("writing backend %s of service %s: %w", be, svc.name(), err)
		}
	}
	entry := lbSvc{Id: id, Count: uint32(len(backends)), AffinitySec: affinity}
	if err := lb.objs.LbServices.Update(key, entry, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("writing service %s: %w", svc.name(), err)
	}
	if found {
		return lb.deleteBackends(old)
	}
	return nil
}

// DeleteService removes a service. Its VIP is refused afterwards if it lies
// in a service CIDR.
func (lb *LoadBalancer) DeleteService(vip netip.Addr, port uint16, proto uint8) error {
	key := svcKeyOf(vip, port, proto)
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var old lbSvc
	if err := lb.objs.LbServices.LookupAndDelete(key, &old); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return fmt.Errorf("deleting service %s: %w", Service{VIP: vip, Port: port, Proto: proto}.name(), err)
	}
	return lb.deleteBackends(old)
}

// Services lists what the datapath holds, backends sorted, so that an agent
// can reconcile it against the cluster after a restart.
func (lb *LoadBalancer) Services() ([]Service, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var keys []lbSvcKey
	var key lbSvcKey
	var entry lbSvc
	it := lb.objs.LbServices.Iterate()
	for it.Next(&key, &entry) {
		keys = append(keys, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("listing services: %w", err)
	}
	services := make([]Service, 0, len(keys))
	for _, key := range keys {
		entry, backends, found, err := lb.lookup(key)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		slices.SortFunc(backends, func(a, b netip.AddrPort) int { return a.Compare(b) })
		services = append(services, Service{
			VIP:      addrOf(key.Vip),
			Port:     swap16(key.Port),
			Proto:    key.Proto,
			Backends: backends,
			Affinity: time.Duration(entry.AffinitySec) * time.Second,
		})
	}
	slices.SortFunc(services, func(a, b Service) int {
		return cmp.Or(a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto))
	})
	return services, nil
}

// SetServiceCIDRs replaces the service CIDRs. A connection to an address
// inside one that is not a programmed service is refused rather than leaked to
// the default route.
func (lb *LoadBalancer) SetServiceCIDRs(cidrs ...netip.Prefix) error {
	want := map[lbCidrKey]bool{}
	for _, p := range cidrs {
		if !p.IsValid() {
			return fmt.Errorf("service CIDR %q is not a valid prefix", p)
		}
		want[cidrKeyOf(p)] = true
	}
	m := lb.objs.LbServiceCidrs
	var stale []lbCidrKey
	var key lbCidrKey
	var present uint8
	it := m.Iterate()
	for it.Next(&key, &present) {
		if !want[key] {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("listing service CIDRs: %w", err)
	}
	for key := range want {
		if err := m.Update(key, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("writing a service CIDR: %w", err)
		}
	}
	for _, key := range stale {
		if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("deleting a service CIDR: %w", err)
		}
	}
	return nil
}

// Counters sums the datapath's per-CPU counters.
func (lb *LoadBalancer) Counters() (Counters, error) {
	var c Counters
	for i, field := range []*uint64{&c.Translated, &c.NoBackend, &c.UnknownVIP, &c.ReverseNAT} {
		var perCPU []uint64
		if err := lb.objs.LbCounters.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("reading counter %d: %w", i, err)
		}
		for _, v := range perCPU {
			*field += v
		}
	}
	return c, nil
}

// lookup reads a service entry and its backends in slot order.
func (lb *LoadBalancer) lookup(key lbSvcKey) (lbSvc, []netip.AddrPort, bool, error) {
	var entry lbSvc
	if err := lb.objs.LbServices.Lookup(key, &entry); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return entry, nil, false, nil
		}
		return entry, nil, false, fmt.Errorf("reading service %s: %w", addrOf(key.Vip), err)
	}
	backends := make([]netip.AddrPort, 0, entry.Count)
	for slot := range int(entry.Count) {
		var be lbBackend
		if err := lb.objs.LbBackends.Lookup(backendKey(entry.Id, slot), &be); err != nil {
			return entry, nil, false, fmt.Errorf("reading backend %d of service %s: %w", slot, addrOf(key.Vip), err)
		}
		backends = append(backends, netip.AddrPortFrom(addrOf(be.Addr), swap16(be.Port)))
	}
	return entry, backends, true, nil
}

func (lb *LoadBalancer) deleteBackends(old lbSvc) error {
	for slot := range int(old.Count) {
		if err := lb.objs.LbBackends.Delete(backendKey(old.Id, slot)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("deleting backend slot %d of service id %d: %w", slot, old.Id, err)
		}
	}
	return nil
}

// allocateID hands out service ids that were never used since the datapath
// was loaded, so a reader holding an old id can never find another revision's
// backends under it.
func (lb *LoadBalancer) allocateID() uint32 {
	lb.nextID++
	return lb.nextID
}

// resumeIDs continues the id sequence of a previous agent and deletes the
// backends no service points to, which an agent that died between writing
// backends and flipping the service leaves behind.
func (lb *LoadBalancer) resumeIDs() error {
	used := map[uint32]bool{}
	var key lbSvcKey
	var entry lbSvc
	it := lb.objs.LbServices.Iterate()
	for it.Next(&key, &entry) {
		used[entry.Id] = true
		lb.nextID = max(lb.nextID, entry.Id)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("listing services: %w", err)
	}
	var orphans []lbBackendKey
	var bk lbBackendKey
	var be lbBackend
	bit := lb.objs.LbBackends.Iterate()
	for bit.Next(&bk, &be) {
		lb.nextID = max(lb.nextID, bk.Id)
		if !used[bk.Id] {
			orphans = append(orphans, bk)
		}
	}
	if err := bit.Err(); err != nil {
		return fmt.Errorf("listing backends: %w", err)
	}
	for _, k := range orphans {
		if err := lb.objs.LbBackends.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("deleting orphaned backend: %w", err)
		}
	}
	return nil
}

// assignSlots orders the wanted backends for their slots: a backend that was
// already programmed keeps its slot when that slot still exists, and the
// others fill the remaining slots in the order given. Duplicates are dropped.
func assignSlots(old, want []netip.AddrPort) []netip.AddrPort {
	wanted := map[netip.AddrPort]bool{}
	var unique []netip.AddrPort
	for _, be := range want {
		if !wanted[be] {
			wanted[be] = true
			unique = append(unique, be)
		}
	}
	slots := make([]netip.AddrPort, len(unique))
	placed := map[netip.AddrPort]bool{}
	for i, be := range old {
		if i < len(slots) && wanted[be] {
			slots[i] = be
			placed[be] = true
		}
	}
	next := 0
	for _, be := range unique {
		if placed[be] {
			continue
		}
		for slots[next].IsValid() {
			next++
		}
		slots[next] = be
	}
	return slots
}

func (s Service) validate() error {
	switch {
	case !s.VIP.IsValid():
		return fmt.Errorf("service VIP is not set")
	case s.Port == 0:
		return fmt.Errorf("service %s: port must be set", s.name())
	case s.Proto != TCP && s.Proto != UDP:
		return fmt.Errorf("service %s: protocol must be TCP (%d) or UDP (%d), got %d", s.name(), TCP, UDP, s.Proto)
	case s.Affinity < 0 || s.Affinity.Seconds() > math.MaxUint32:
		return fmt.Errorf("service %s: affinity timeout must be between 0 and %ds, got %s", s.name(), uint32(math.MaxUint32), s.Affinity)
	}
	for _, be := range s.Backends {
		if !be.IsValid() || be.Port() == 0 {
			return fmt.Errorf("service %s: backend %s needs an address and a port", s.name(), be)
		}
		if be.Addr().Unmap().Is4() != s.VIP.Unmap().Is4() {
			return fmt.Errorf("service %s: backend %s is of another IP family than the VIP", s.name(), be)
		}
	}
	return nil
}

func (s Service) name() string {
	proto := map[uint8]string{TCP: "tcp", UDP: "udp"}[s.Proto]
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.VIP, s.Port), proto)
}

// The datapath keeps addresses as 16 bytes, IPv4 ones IPv4-mapped, and
// addresses and ports in network byte order, as the socket hooks see them.

func svcKeyOf(vip netip.Addr, port uint16, proto uint8) lbSvcKey {
	return lbSvcKey{Vip: addrTo(vip), Port: swap16(port), Proto: proto}
}

func backendKey(id uint32, slot int) lbBackendKey {
	return lbBackendKey{Id: id, Slot: uint32(slot)}
}

func backendOf(be netip.AddrPort) lbBackend {
	return lbBackend{Addr: addrTo(be.Addr()), Port: swap16(be.Port())}
}

func cidrKeyOf(p netip.Prefix) lbCidrKey {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96 // the IPv4-mapped prefix ::ffff:0:0/96
	}
	return lbCidrKey{Prefixlen: uint32(bits), Addr: addrTo(p.Addr())}
}

func addrTo(a netip.Addr) lbAddr {
	b := a.As16() // IPv4 comes back IPv4-mapped
	var out lbAddr
	for i := range out.W {
		out.W[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return out
}

func addrOf(a lbAddr) netip.Addr {
	var b [16]byte
	for i, w := range a.W {
		binary.NativeEndian.PutUint32(b[4*i:], w)
	}
	return netip.AddrFrom16(b).Unmap()
}

// swap16 converts a port between host and network byte order.
func swap16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}
