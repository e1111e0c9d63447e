package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/ebpf/nodeport"
)

// Datapath is what the proxy programs: ebpf/lb's LoadBalancer.
type Datapath interface {
	SetService(lb.Service) error
	DeleteService(vip netip.Addr, port uint16, proto uint8) error
	Services() ([]lb.Service, error)
}

// Proxier keeps the datapath equal to the cluster's Services: every change
// of a Service or an EndpointSlice recomputes the whole desired set and
// applies the difference, so that a restarted agent, which finds the
// pinned datapath as the last one left it, reconciles in one pass.
type Proxier struct {
	Client   client.Reader
	Datapath Datapath
	// Static are services the agent serves itself, such as the node-local
	// cluster DNS behind the kube-dns address; they win over a Service
	// with the same address and port.
	Static []lb.Service
	// NodePortTable is the nftables table the node ports are kept in;
	// empty serves none.
	NodePortTable string
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=services;endpointslices,verbs=get;list;watch

// everything is the one work item: the datapath is synced as a whole.
var everything = reconcile.Request{}

// Setup runs the proxier in the manager.
func (p *Proxier) Setup(mgr ctrl.Manager) error {
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{everything}
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeagent-proxy").
		Watches(&skiffcorev1.Service{}, all).
		Watches(&skiffcorev1.EndpointSlice{}, all).
		Complete(p)
}

// Reconcile syncs the datapath.
func (p *Proxier) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, p.Sync(ctx)
}

// Sync programs the datapath with the Services and EndpointSlices the
// client sees.
func (p *Proxier) Sync(ctx context.Context) error {
	svcs := &skiffcorev1.ServiceList{}
	if err := p.Client.List(ctx, svcs); err != nil {
		return err
	}
	slices := &skiffcorev1.EndpointSliceList{}
	if err := p.Client.List(ctx, slices); err != nil {
		return err
	}
	err := Apply(p.Datapath, withStatic(Desired(svcs.Items, slices.Items), p.Static))
	if p.NodePortTable != "" {
		err = errors.Join(err, nodeport.Sync(p.NodePortTable, NodePorts(svcs.Items, slices.Items)))
	}
	return err
}

// Apply makes the datapath hold exactly the desired services: it writes
// each (unchanged ones cost nothing) and deletes those no longer wanted.
func Apply(dp Datapath, desired []lb.Service) error {
	current, err := dp.Services()
	if err != nil {
		return fmt.Errorf("reading the datapath: %w", err)
	}
	want := map[string]bool{}
	var errs []error
	for _, s := range desired {
		want[key(s)] = true
		if err := dp.SetService(s); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range current {
		if !want[key(s)] {
			errs = append(errs, dp.DeleteService(s.VIP, s.Port, s.Proto))
		}
	}
	return errors.Join(errs...)
}

// withStatic adds the static services to desired, replacing any desired
// entry with the same address, port and protocol.
func withStatic(desired, static []lb.Service) []lb.Service {
	if len(static) == 0 {
		return desired
	}
	override := map[string]bool{}
	for _, s := range static {
		override[key(s)] = true
	}
	out := make([]lb.Service, 0, len(desired)+len(static))
	for _, s := range desired {
		if !override[key(s)] {
			out = append(out, s)
		}
	}
	return append(out, static...)
}

func key(s lb.Service) string { return fmt.Sprintf("%s/%d/%d", s.VIP, s.Port, s.Proto) }
