package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// RouteProtocol marks the routes podnet owns (rtm_protocol 0x53, "S" for
// skiff; `ip route` shows it as "proto 83"). The kernel and routing
// daemons use the numbers up to 192 listed in /etc/iproute2/rt_protos, and
// 83 is none of them. The mark is what lets an agent list exactly its own
// routes, also those a previous run of it left, and never touch anyone
// else's.
const RouteProtocol netlink.RouteProtocol = 0x53

// SyncRoutes makes the main routing table of h's network namespace hold
// exactly want among the routes marked RouteProtocol: it adds or replaces
// those missing or pointing elsewhere, and deletes those no longer wanted,
// such as a route to a node that is gone. A route that cannot be
// programmed (typically a next hop that is not on a directly connected
// subnet) is logged with its node and reported in the returned error, and
// the others are still programmed.
func SyncRoutes(ctx context.Context, h *netlink.Handle, want []Route) error {
	logger := log.FromContext(ctx)
	have, err := ownRoutes(h)
	if err != nil {
		return err
	}
	wanted := map[netip.Prefix]string{}
	var failed []error
	for _, r := range want {
		if other, ok := wanted[r.Dst]; ok {
			failed = append(failed, fmt.Errorf("nodes %s and %s both have podCIDR %s: routing it to %s only", other, r.Node, r.Dst, other))
			continue
		}
		wanted[r.Dst] = r.Node
		if old, ok := have[r.Dst]; ok && gateway(old) == r.Via {
			continue
		}
		if err := h.RouteReplace(kernelRoute(r)); err != nil {
			err = routeError(r, err)
			logger.Error(err, "cannot route to a node's pods", "node", r.Node)
			failed = append(failed, err)
			continue
		}
		logger.V(1).Info("routed a node's pods", "node", r.Node, "podCIDR", r.Dst, "via", r.Via)
	}
	for dst, old := range have {
		if _, ok := wanted[dst]; ok {
			continue
		}
		if err := h.RouteDel(&old); err != nil && !errors.Is(err, unix.ESRCH) {
			failed = append(failed, fmt.Errorf("deleting the route to %s via %s: %w", dst, gateway(old), err))
			continue
		}
		logger.V(1).Info("removed the route to pods of a node that left or moved", "podCIDR", dst, "via", gateway(old))
	}
	return errors.Join(failed...)
}

// removeRoutes deletes every route podnet made in h's namespace.
func removeRoutes(h *netlink.Handle) error {
	return SyncRoutes(context.Background(), h, nil)
}

// ownRoutes lists the routes marked RouteProtocol in the main table, of
// both families, by destination.
func ownRoutes(h *netlink.Handle) (map[netip.Prefix]netlink.Route, error) {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing the routes to other nodes' pods (proto %d): %w", RouteProtocol, err)
	}
	out := map[netip.Prefix]netlink.Route{}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		addr, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		out[netip.PrefixFrom(addr.Unmap(), ones)] = r
	}
	return out, nil
}

// kernelRoute is r as a netlink route: no device, so the kernel picks the
// one whose connected subnet holds the next hop, as `ip route add <dst>
// via <gw>` does.
func kernelRoute(r Route) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
		Gw:       r.Via.AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}

// gateway is a kernel route's next hop.
func gateway(r netlink.Route) netip.Addr {
	addr, _ := netip.AddrFromSlice(r.Gw)
	return addr.Unmap()
}

// routeError explains the kernel's refusal of a route in host-gw terms.
func routeError(r Route, err error) error {
	if errors.Is(err, unix.ENETUNREACH) {
		return fmt.Errorf("route to node %s's pods %s via %s: %w: host-gw needs the node's InternalIP on a subnet this node is directly connected to (all nodes on one link)", r.Node, r.Dst, r.Via, err)
	}
	return fmt.Errorf("route to node %s's pods %s via %s: %w", r.Node, r.Dst, r.Via, err)
}
