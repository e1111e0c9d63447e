package nodeagent

import (
	"context"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update;patch

// LeaseNamespace holds every node's heartbeat Lease, as upstream.
const LeaseNamespace = "kube-node-lease"

// heartbeat registers the node, then renews its Lease every renewInterval
// until ctx ends. The first renewal waits a random part of the interval, so
// that a host that registers a thousand nodes at once does not renew them
// all at once. After a failed renewal it registers the node again, in case
// the Node (and with it its Lease) was deleted.
func (a *agent) heartbeat(ctx context.Context, h *Host) {
	logger := log.FromContext(ctx).WithValues("node", a.cfg.Name)
	interval := h.opts.LeaseRenewInterval
	var node *skiffcorev1.Node
	var lease *coordinationv1.Lease
	beat := func() {
		var err error
		if node == nil || lease == nil {
			if node, err = h.register(ctx, a); err != nil {
				node = nil
				if ctx.Err() == nil {
					logger.Error(err, "registering the node")
				}
				return
			}
		}
		if lease, err = a.renewLease(ctx, h, node, lease); err != nil && ctx.Err() == nil {
			logger.Error(err, "renewing the node's lease")
		}
	}
	beat()
	timer := time.NewTimer(rand.N(interval) + time.Millisecond)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			beat()
			wait := interval
			if node == nil || lease == nil {
				// Try again soon, but spread the retries of many nodes.
				wait = min(interval, time.Second) + rand.N(min(interval, time.Second))
			}
			timer.Reset(wait)
		}
	}
}

// renewLease writes the Lease with a fresh renewTime, creating it when it
// is missing. It returns the stored Lease, to renew from next time without
// reading it first; nil after a failure, so that the next try reads it.
func (a *agent) renewLease(ctx context.Context, h *Host, node *skiffcorev1.Node, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(h.clock.Now())
	if lease == nil {
		lease = &coordinationv1.Lease{}
		err := h.reader.Get(ctx, types.NamespacedName{Namespace: LeaseNamespace, Name: a.cfg.Name}, lease)
		if apierrors.IsNotFound(err) {
			lease = a.newLease(node, now, h.opts.LeaseDuration)
			if err := h.client.Create(ctx, lease); err != nil {
				return nil, err
			}
			return lease, nil
		}
		if err != nil {
			return nil, err
		}
	}
	lease.Spec.HolderIdentity = ptr.To(a.cfg.Name)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(h.opts.LeaseDuration / time.Second))
	lease.Spec.RenewTime = &now
	if len(lease.OwnerReferences) == 0 {
		lease.OwnerReferences = nodeOwner(node)
	}
	if err := h.client.Update(ctx, lease); err != nil {
		return nil, err
	}
	return lease, nil
}

// newLease is the node's first Lease, owned by its Node so that it goes
// when the Node goes.
func (a *agent) newLease(node *skiffcorev1.Node, now metav1.MicroTime, duration time.Duration) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Namespace: LeaseNamespace, OwnerReferences: nodeOwner(node)},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(a.cfg.Name),
			LeaseDurationSeconds: ptr.To(int32(duration / time.Second)),
			RenewTime:            &now,
		},
	}
}

func nodeOwner(node *skiffcorev1.Node) []metav1.OwnerReference {
	return []metav1.OwnerReference{{
		APIVersion: skiffcorev1.GroupVersion.String(), Kind: "Node", Name: node.Name, UID: node.UID,
	}}
}
