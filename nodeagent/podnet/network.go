package podnet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/cni"
)

// DefaultResyncPeriod is how often the network is programmed again with
// no Node having changed, to put back a route or table that something
// else removed (flannel's host-gw checks its routes as often).
const DefaultResyncPeriod = time.Minute

// Network keeps this node's part of the pod network true as Nodes come,
// go and get their podCIDRs: IPv4 forwarding on, a route to every other
// node's pods, and the masquerade rule for its own pods' traffic leaving
// the cluster. It watches every Node through a cache of its own, since the
// agent's manager caches only its own Node.
type Network struct {
	// NodeName is this node, which gets no route: its podCIDR is on its
	// own pod bridge.
	NodeName string
	// ClusterCIDR holds every pod address of the cluster (--cluster-cidr):
	// traffic to it keeps the pod's address, traffic elsewhere is
	// masqueraded.
	ClusterCIDR netip.Prefix
	// Table is the nftables table of the masquerade rule; empty is
	// DefaultTable.
	Table string
	// Bridge is the pods' bridge (--cni-bridge), through which traffic to
	// this node's own pods leaves unmasqueraded; empty is cni.DefaultBridge.
	Bridge string
	// Netns is where to program; the zero value is the agent's own network
	// namespace.
	Netns Netns
	// ResyncPeriod is how often to program again when nothing changed;
	// 0 is DefaultResyncPeriod.
	ResyncPeriod time.Duration

	nodes client.Reader
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch

// everything is the one work item: the network is synced as a whole.
var everything = reconcile.Request{}

// Setup runs the network's controller, and the cache of every Node it
// reads, in the manager.
func (n *Network) Setup(mgr ctrl.Manager) error {
	if n.NodeName == "" {
		return fmt.Errorf("pod network: the node name must be set")
	}
	if !n.ClusterCIDR.IsValid() || !n.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("pod network: the cluster CIDR must be an IPv4 range (--cluster-cidr), got %q", n.ClusterCIDR)
	}
	// ReaderFailOnMissingInformer: this cache holds Nodes and nothing
	// else; a read of another kind is a bug, not a reason for a new watch.
	nodes, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:                      mgr.GetScheme(),
		Mapper:                      mgr.GetRESTMapper(),
		HTTPClient:                  mgr.GetHTTPClient(),
		ByObject:                    map[client.Object]cache.ByObject{&skiffcorev1.Node{}: {}},
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return fmt.Errorf("pod network: creating the cache of all Nodes: %w", err)
	}
	if err := mgr.Add(nodes); err != nil {
		return err
	}
	n.nodes = nodes
	all := handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, *skiffcorev1.Node) []reconcile.Request {
		return []reconcile.Request{everything}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeagent-podnet").
		WatchesRawSource(source.Kind(nodes, &skiffcorev1.Node{}, all, routingChanged())).
		Complete(n)
}

// routingChanged lets through the Node updates that change a route or the
// masquerade rule, and not the status writes of every heartbeat.
func routingChanged() predicate.TypedPredicate[*skiffcorev1.Node] {
	return predicate.TypedFuncs[*skiffcorev1.Node]{
		UpdateFunc: func(e event.TypedUpdateEvent[*skiffcorev1.Node]) bool {
			return !slices.Equal(PodCIDRs(e.ObjectOld), PodCIDRs(e.ObjectNew)) ||
				!slices.Equal(internalIPs(e.ObjectOld), internalIPs(e.ObjectNew))
		},
	}
}

// Reconcile programs the network for the Nodes there are now, and again
// after ResyncPeriod.
func (n *Network) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	nodes := &skiffcorev1.NodeList{}
	if err := n.nodes.List(ctx, nodes); err != nil {
		return reconcile.Result{}, err
	}
	if err := n.Sync(ctx, nodes.Items); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: cmp.Or(n.ResyncPeriod, DefaultResyncPeriod)}, nil
}

// Sync programs the namespace for nodes: forwarding, the routes to the
// other nodes' pods, and the masquerade rule of this node's pods, whose
// podCIDR comes from this node's Node. Each step runs even if another
// fails; the error tells them all.
func (n *Network) Sync(ctx context.Context, nodes []skiffcorev1.Node) error {
	return errors.Join(
		n.Netns.EnableForwarding(),
		n.Netns.SyncRoutes(ctx, Routes(n.NodeName, nodes)),
		n.Netns.SyncMasquerade(cmp.Or(n.Table, DefaultTable), Masquerade{
			PodCIDR:     ownPodCIDR(n.NodeName, nodes),
			ClusterCIDR: n.ClusterCIDR,
			Bridge:      cmp.Or(n.Bridge, cni.DefaultBridge),
		}),
	)
}

// ownPodCIDR is node self's IPv4 podCIDR, or the zero Prefix while it has
// none (or its Node is not there yet).
func ownPodCIDR(self string, nodes []skiffcorev1.Node) netip.Prefix {
	for i := range nodes {
		if nodes[i].Name != self {
			continue
		}
		for _, cidr := range PodCIDRs(&nodes[i]) {
			if cidr.Addr().Is4() {
				return cidr
			}
		}
	}
	return netip.Prefix{}
}
