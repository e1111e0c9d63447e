package podnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"skiff.dev/skiff/ebpf/nodeport"
)

// ipForward is IPv4 forwarding of the network namespace of the thread
// that opens it.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// Netns is the network namespace podnet programs. The node agent runs in
// its node's namespace and uses the zero value; tests program a throwaway
// namespace by its path.
type Netns struct {
	// Path is a network namespace file, such as /run/netns/<name>; empty
	// is the agent's own namespace.
	Path string
}

// SyncRoutes programs want as the namespace's routes to other nodes' pods
// (see the function SyncRoutes).
func (ns Netns) SyncRoutes(ctx context.Context, want []Route) error {
	h, err := ns.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	return SyncRoutes(ctx, h, want)
}

// SyncMasquerade makes table hold exactly the masquerade rule for m.
func (ns Netns) SyncMasquerade(table string, m Masquerade) error {
	ruleset, err := Ruleset(table, m)
	if err != nil {
		return err
	}
	return ns.run(func() error { return nodeport.Replace(table, ruleset) })
}

// EnableForwarding turns IPv4 forwarding on, without which a node would
// not pass its pods' packets on to other nodes, nor theirs to its pods.
// IPv6 forwarding is left as it is: turning it on also stops the node
// from accepting router advertisements, a choice for whoever sets up its
// IPv6.
func (ns Netns) EnableForwarding() error {
	return ns.run(func() error {
		if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("enabling IPv4 forwarding (needs root): %w", err)
		}
		return nil
	})
}

// Remove undoes what podnet did in the namespace, for a node that leaves:
// it deletes table and every route marked RouteProtocol. Forwarding stays
// on, since something else may need it too.
func (ns Netns) Remove(table string) error {
	h, err := ns.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	return errors.Join(removeRoutes(h), ns.run(func() error { return nodeport.Delete(table) }))
}

// Remove undoes what podnet did in the agent's own network namespace:
// table and the routes to other nodes' pods.
func Remove(table string) error { return Netns{}.Remove(table) }

// netlink opens a netlink handle in the namespace. A handle is bound to
// its namespace when it opens, so no thread has to switch namespaces.
func (ns Netns) netlink() (*netlink.Handle, error) {
	if ns.Path == "" {
		return netlink.NewHandle()
	}
	target, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", ns.Path, err)
	}
	defer target.Close()
	return netlink.NewHandleAt(target)
}

// run runs fn in the namespace: files under /proc/sys/net it opens and
// programs it starts belong to the namespace. For another namespace fn
// runs on a thread of its own that never comes back: it stays locked, and
// Go ends it with its goroutine instead of reusing a thread that sits in
// the wrong namespace.
func (ns Netns) run(fn func() error) error {
	if ns.Path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		target, err := netns.GetFromPath(ns.Path)
		if err != nil {
			errc <- fmt.Errorf("opening network namespace %s: %w", ns.Path, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", ns.Path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
