// Package nodeipam gives each node a spec.podCIDR carved from the cluster
// CIDR, which the node agent uses for its pods' addresses.
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/recorder"
)

// Config is the node IPAM controller's configuration.
type Config struct {
	// ClusterCIDR is the range every pod address comes from.
	ClusterCIDR string
	// NodeCIDRMaskSize is the prefix length of each node's podCIDR.
	NodeCIDRMaskSize int
}

// options are the settings tests shorten; Setup uses the defaults.
type options struct {
	// retryExhausted is how long a node waits for a range to be freed when
	// the cluster CIDR is full.
	retryExhausted time.Duration
}

func defaultOptions() options { return options{retryExhausted: 30 * time.Second} }

// Setup registers the node IPAM controller with the manager. A bad config is
// refused here, naming the flag to fix.
func Setup(mgr ctrl.Manager, cfg Config) error { return setup(mgr, cfg, defaultOptions()) }

func setup(mgr ctrl.Manager, cfg Config, opts options) error {
	set, err := newCIDRSet(cfg)
	if err != nil {
		return err
	}
	r := &Reconciler{
		Client:         mgr.GetClient(),
		Recorder:       recorder.New(mgr, "nodeipam-controller"),
		set:            set,
		owner:          map[string]netip.Prefix{},
		retryExhausted: opts.retryExhausted,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeipam").
		For(&skiffcorev1.Node{}).
		// One worker: allocation is a read-modify-write of the in-use set,
		// and two workers could otherwise hand one range to two nodes.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// newCIDRSet checks the config and builds the allocator, with errors that
// name the flags.
func newCIDRSet(cfg Config) (*CIDRSet, error) {
	cluster, err := netip.ParsePrefix(cfg.ClusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("--cluster-cidr %q: %w", cfg.ClusterCIDR, err)
	}
	if !cluster.Addr().Is4() {
		return nil, fmt.Errorf("--cluster-cidr %s: only an IPv4 range is supported", cfg.ClusterCIDR)
	}
	if cfg.NodeCIDRMaskSize < cluster.Bits() || cfg.NodeCIDRMaskSize > 32 {
		return nil, fmt.Errorf("--node-cidr-mask-size %d must be between the cluster CIDR's prefix %d and 32", cfg.NodeCIDRMaskSize, cluster.Bits())
	}
	return NewCIDRSet(cluster, cfg.NodeCIDRMaskSize)
}

// Reconciler allocates podCIDRs. Unlike most reconcilers it keeps state in
// memory: the in-use set cannot be rebuilt from the cache on every pass,
// because the cache lags the ranges this controller has just written.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder

	mu  sync.Mutex
	set *CIDRSet
	// owner is the range each node holds, so that a deleted node's range
	// can be freed after the node object is gone.
	owner map[string]netip.Prefix
	// synced is set once every existing node's range is in the set.
	synced         bool
	retryExhausted time.Duration
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch;patch

// Reconcile gives the node a podCIDR if it has none, and frees the range of
// a node that is gone.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()

	// 1. Before the first allocation, learn every range already in use, so
	// that a restarted controller never hands out a range a node holds.
	if !r.synced {
		if err := r.occupyExisting(ctx); err != nil {
			return ctrl.Result{}, err
		}
		r.synced = true
	}

	// 2. A deleted node frees its range.
	var node skiffcorev1.Node
	if err := r.Get(ctx, req.NamespacedName, &node); err != nil {
		if apierrors.IsNotFound(err) {
			r.release(ctx, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !node.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	// 3. A node that has a range keeps it; make sure it is marked used.
	if node.Spec.PodCIDR != "" {
		r.record(ctx, node.Name, node.Spec.PodCIDR)
		return ctrl.Result{}, nil
	}

	// 4. Otherwise allocate one, or give back the one this controller
	// recorded for a node of the same name that was deleted and re-created
	// before the deletion was seen.
	cidr, ok := r.owner[node.Name]
	if !ok {
		var err error
		cidr, err = r.set.Allocate()
		if errors.Is(err, ErrNoCIDRsRemaining) {
			r.Recorder.Eventf(&node, nil, corev1.EventTypeWarning, "CIDRNotAvailable", "AllocatePodCIDR",
				"Node %s status is now: CIDRNotAvailable (no free /%d range left in %s)", node.Name, r.set.maskSize, r.set.cluster)
			log.Info("no pod CIDR left for the node; retrying later", "node", node.Name, "retryAfter", r.retryExhausted)
			return ctrl.Result{RequeueAfter: r.retryExhausted}, nil
		}
		if err != nil {
			return ctrl.Result{}, err
		}
		r.owner[node.Name] = cidr
	}
	if err := r.patchPodCIDR(ctx, &node, cidr); err != nil {
		// The range stays recorded for this node: the retry writes the same
		// one, and a deletion frees it.
		return ctrl.Result{}, fmt.Errorf("writing podCIDR %s to node %s: %w", cidr, node.Name, err)
	}
	log.Info("allocated a pod CIDR", "node", node.Name, "podCIDR", cidr.String())
	return ctrl.Result{}, nil
}

// occupyExisting marks the ranges of every node in the cache as used.
func (r *Reconciler) occupyExisting(ctx context.Context) error {
	var nodes skiffcorev1.NodeList
	if err := r.List(ctx, &nodes); err != nil {
		return fmt.Errorf("listing nodes to learn the ranges in use: %w", err)
	}
	for i := range nodes.Items {
		if cidr := nodes.Items[i].Spec.PodCIDR; cidr != "" {
			r.record(ctx, nodes.Items[i].Name, cidr)
		}
	}
	return nil
}

// record notes that node holds cidr, freeing what it held before.
func (r *Reconciler) record(ctx context.Context, node, cidr string) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		logf.FromContext(ctx).Info("ignoring an unparsable podCIDR", "node", node, "podCIDR", cidr, "error", err.Error())
		return
	}
	if old, ok := r.owner[node]; ok {
		if old == p.Masked() {
			return
		}
		_ = r.set.Release(old)
	}
	if err := r.set.Occupy(p); err != nil {
		// A range outside the cluster CIDR cannot collide with ours.
		logf.FromContext(ctx).V(1).Info("podCIDR outside the cluster CIDR", "node", node, "podCIDR", cidr, "error", err.Error())
		return
	}
	r.owner[node] = p.Masked()
}

// release frees the range of a node that no longer exists.
func (r *Reconciler) release(ctx context.Context, node string) {
	cidr, ok := r.owner[node]
	if !ok {
		return
	}
	delete(r.owner, node)
	_ = r.set.Release(cidr)
	logf.FromContext(ctx).Info("released the pod CIDR of a deleted node", "node", node, "podCIDR", cidr.String())
}

// patchPodCIDR writes spec.podCIDR and spec.podCIDRs. The resourceVersion
// precondition makes the write fail, rather than overwrite, if someone set
// a range in the meantime; the retry then records theirs.
func (r *Reconciler) patchPodCIDR(ctx context.Context, node *skiffcorev1.Node, cidr netip.Prefix) error {
	base := node.DeepCopy()
	patched := node.DeepCopy()
	patched.Spec.PodCIDR = cidr.String()
	patched.Spec.PodCIDRs = []string{cidr.String()}
	return r.Patch(ctx, patched, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}
