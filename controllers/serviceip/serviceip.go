// Package serviceip allocates Services' cluster IPs and node ports. Upstream
// does it in the apiserver when a Service is created; skiff's Service is a
// custom resource, so this controller does it right after the create, with
// the same defaults and the same ledger of taken addresses.
package serviceip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/recorder"
)

// Config is the allocator's configuration, kube-apiserver's flags of the
// same names.
type Config struct {
	// ServiceClusterIPRange is the CIDR cluster IPs come from
	// (DefaultClusterIPRange when empty).
	ServiceClusterIPRange string
	// ServiceNodePortRange is the node port range (DefaultNodePortRange
	// when empty).
	ServiceNodePortRange string
}

// Upstream's defaults for the two ranges, as kube-apiserver's flags have.
const (
	DefaultClusterIPRange = "10.96.0.0/16"
	DefaultNodePortRange  = "30000-32767"
)

const (
	// Finalizer holds a Service until its cluster IP and node ports are
	// back in the ledger, so that no entry outlives its Service.
	Finalizer = "core.skiff.dev/service-allocations"
	// NodePortsAnnotation lists the node ports the ledger holds for the
	// Service, so that ports dropped from its spec can be given back.
	NodePortsAnnotation = "serviceip.skiff.dev/node-ports"

	// ConditionClusterIPAllocated says whether the Service's cluster IP is
	// its own; False carries why not.
	ConditionClusterIPAllocated = "ClusterIPAllocated"
	// ConditionNodePortsAllocated says whether every node port is its own.
	ConditionNodePortsAllocated = "NodePortsAllocated"

	// maxTries bounds the claims one pass makes for one value when the
	// cache's hint keeps proving stale.
	maxTries = 32
)

// options are the settings tests shorten; Setup uses the defaults.
type options struct {
	// retryFull is how long a Service waits for a value to be freed when
	// its range is full or its requested value is held.
	retryFull time.Duration
}

func defaultOptions() options { return options{retryFull: 30 * time.Second} }

// Setup registers the allocator with the manager. A bad range is refused
// here, naming the flag to fix.
func Setup(mgr ctrl.Manager, cfg Config) error { return setup(mgr, cfg, defaultOptions()) }

func setup(mgr ctrl.Manager, cfg Config, opts options) error {
	if cfg.ServiceClusterIPRange == "" {
		cfg.ServiceClusterIPRange = DefaultClusterIPRange
	}
	if cfg.ServiceNodePortRange == "" {
		cfg.ServiceNodePortRange = DefaultNodePortRange
	}
	ips, err := parseIPRange(cfg.ServiceClusterIPRange)
	if err != nil {
		return err
	}
	ports, err := parsePortRange(cfg.ServiceNodePortRange)
	if err != nil {
		return err
	}
	r := &Reconciler{
		Client:   mgr.GetClient(),
		Recorder: recorder.New(mgr, "ipallocator-controller"),
		live:     mgr.GetAPIReader(),
		ledger:   ledger{client: mgr.GetClient(), live: mgr.GetAPIReader()},
		ips:      ips,
		ports:    ports,
		opts:     opts,
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("serviceip").
		For(&skiffcorev1.Service{}).
		// Several workers are safe: the ledger, not this process, decides.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(r)
}

// Reconciler allocates cluster IPs and node ports.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder

	// live reads the apiserver, not the cache.
	live   client.Reader
	ledger ledger
	ips    ipRange
	ports  portRange
	opts   options
}

// refusal is a request this controller will not grant: it becomes a
// Warning Event and a False condition rather than a retried error.
type refusal struct {
	condition, reason, message string
	// retry is set when waiting may help: a full range, or a value whose
	// holder may go.
	retry bool
}

func (r *refusal) Error() string { return r.message }

// +kubebuilder:rbac:groups=core.skiff.dev,resources=services,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=services/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ipaddresses,verbs=get;list;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;create;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=create

// Reconcile gives a Service its cluster IP and node ports, and gives them
// back when it goes.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the Service.
	var svc skiffcorev1.Service
	if err := r.Get(ctx, req.NamespacedName, &svc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	// 2. A Service being deleted, or turned into an ExternalName one, gives
	// back everything it holds.
	if !svc.DeletionTimestamp.IsZero() || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return ctrl.Result{}, r.releaseAll(ctx, &svc)
	}

	// 3. The finalizer goes on before the first claim, so that a deletion
	// can never leave a ledger entry behind.
	if !controllerutil.ContainsFinalizer(&svc, Finalizer) {
		base := svc.DeepCopy()
		controllerutil.AddFinalizer(&svc, Finalizer)
		if err := r.Patch(ctx, &svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the allocation finalizer: %w", err)
		}
	}

	// 4. A Service whose conditions vouch for its current spec is done:
	// re-claiming would cost two requests per value on every resync.
	if settled(&svc) {
		return ctrl.Result{}, nil
	}

	// 5. Claim the cluster IP and node ports into a copy of the spec.
	want := svc.DeepCopy()
	var claimed claims
	var refusals []*refusal
	if err := r.allocateClusterIP(ctx, want, &claimed); err != nil {
		if !asRefusal(err, &refusals) {
			return ctrl.Result{}, err
		}
	}
	if err := r.allocateNodePorts(ctx, want, &claimed); err != nil {
		if !asRefusal(err, &refusals) {
			r.giveBack(ctx, want, claimed)
			return ctrl.Result{}, err
		}
	}

	// 6. Write the spec, then give back the node ports it no longer lists.
	// Only a write that succeeded proves the Service was current: the
	// ports a stale copy no longer lists may have been claimed again since.
	if !equality.Semantic.DeepEqual(svc.Spec, want.Spec) || !equality.Semantic.DeepEqual(svc.Annotations, want.Annotations) {
		if err := r.Patch(ctx, want, client.MergeFromWithOptions(&svc, client.MergeFromWithOptimisticLock{})); err != nil {
			// Nothing records what was just claimed: give it back, and
			// the retry claims afresh.
			r.giveBack(ctx, want, claimed)
			return ctrl.Result{}, fmt.Errorf("writing the allocations: %w", err)
		}
		logf.FromContext(ctx).Info("allocated", "clusterIP", want.Spec.ClusterIP, "nodePorts", want.Annotations[NodePortsAnnotation])
		for _, n := range heldNodePorts(&svc) {
			if !slices.Contains(heldNodePorts(want), n) {
				if err := r.ledger.releasePort(ctx, want, n); err != nil {
					return ctrl.Result{}, fmt.Errorf("releasing node port %d: %w", n, err)
				}
			}
		}
	}

	// 7. Report refusals as upstream would have refused the create: a
	// Warning Event, and a condition that stays until it is resolved.
	return r.updateStatus(ctx, want, refusals)
}

// settled reports whether this controller has already granted everything
// the Service's current generation asks for.
func settled(svc *skiffcorev1.Service) bool {
	granted := func(cond string) bool {
		c := meta.FindStatusCondition(svc.Status.Conditions, cond)
		return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == svc.Generation
	}
	return granted(ConditionClusterIPAllocated) && (!hasNodePorts(svc) || granted(ConditionNodePortsAllocated))
}

// asRefusal appends err to refusals if it is one.
func asRefusal(err error, refusals *[]*refusal) bool {
	var ref *refusal
	if errors.As(err, &ref) {
		*refusals = append(*refusals, ref)
		return true
	}
	return false
}

// claims are the values one pass created in the ledger, to give back if
// the Service write that records them fails.
type claims struct {
	ip    netip.Addr
	ports []int32
}

// giveBack releases the claims of a pass whose write failed, except those
// the Service lists after all: with two managers, another worker may have
// found this pass's entry for a value the Service names and recorded it.
// The Service is read from the apiserver, after the failure: a write that
// recorded the value has happened by then, and any later one is based on
// a spec that lists it.
func (r *Reconciler) giveBack(ctx context.Context, svc *skiffcorev1.Service, c claims) {
	log := logf.FromContext(ctx)
	var live skiffcorev1.Service
	if err := r.live.Get(ctx, client.ObjectKeyFromObject(svc), &live); client.IgnoreNotFound(err) != nil {
		log.Error(err, "reading the Service to give back unrecorded claims; they are freed with the Service")
		return
	}
	listed := live.DeletionTimestamp.IsZero() && live.UID == svc.UID
	if c.ip.IsValid() && !(listed && (live.Spec.ClusterIP == c.ip.String() || slices.Contains(live.Spec.ClusterIPs, c.ip.String()))) {
		if err := r.ledger.releaseIP(ctx, svc, c.ip.String()); err != nil {
			log.Error(err, "giving back an unrecorded cluster IP; it is freed with the Service", "clusterIP", c.ip)
		}
	}
	for _, n := range c.ports {
		if listed && slices.ContainsFunc(live.Spec.Ports, func(p corev1.ServicePort) bool { return p.NodePort == n }) {
			continue
		}
		if err := r.ledger.releasePort(ctx, svc, n); err != nil {
			log.Error(err, "giving back an unrecorded node port; it is freed with the Service", "nodePort", n)
		}
	}
}

// allocateClusterIP fills spec.clusterIP(s), ipFamilies and ipFamilyPolicy
// as upstream's defaults: a requested address is claimed, a missing one is
// picked from the range, and a headless Service ("None") keeps none.
func (r *Reconciler) allocateClusterIP(ctx context.Context, svc *skiffcorev1.Service, claimed *claims) error {
	spec := &svc.Spec
	requested := spec.ClusterIP
	if requested == "" && len(spec.ClusterIPs) > 0 {
		requested = spec.ClusterIPs[0]
	}
	spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	if requested == corev1.ClusterIPNone {
		spec.ClusterIP, spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
		return nil
	}

	var addr netip.Addr
	var created bool
	var err error
	if requested != "" {
		addr, created, err = r.claimRequestedIP(ctx, svc, requested)
	} else {
		addr, created, err = r.claimFreeIP(ctx, svc)
	}
	if err != nil {
		return err
	}
	if created {
		claimed.ip = addr
	}
	spec.ClusterIP, spec.ClusterIPs = addr.String(), []string{addr.String()}
	return nil
}

// claimRequestedIP claims the address the user asked for, or says why not.
func (r *Reconciler) claimRequestedIP(ctx context.Context, svc *skiffcorev1.Service, requested string) (netip.Addr, bool, error) {
	addr, err := netip.ParseAddr(requested)
	switch {
	case err != nil || !addr.Is4():
		return addr, false, &refusal{ConditionClusterIPAllocated, "ClusterIPInvalid",
			fmt.Sprintf("spec.clusterIP %q: must be an IPv4 address or None", requested), false}
	case !r.ips.contains(addr):
		return addr, false, &refusal{ConditionClusterIPAllocated, "ClusterIPOutOfRange",
			fmt.Sprintf("spec.clusterIP %s: not in the valid range %s; recreate the Service with an address from it, or none", addr, r.ips.prefix), false}
	}
	created, err := r.ledger.claimIP(ctx, svc, addr, listed)
	if errors.Is(err, errTaken) {
		return addr, false, &refusal{ConditionClusterIPAllocated, "ClusterIPAlreadyAllocated",
			fmt.Sprintf("spec.clusterIP %s: provided IP is already allocated; recreate the Service with another address, or none", addr), true}
	}
	return addr, created, err
}

// claimFreeIP claims an address no Service in the cache has, trying
// others when the cache proves stale.
func (r *Reconciler) claimFreeIP(ctx context.Context, svc *skiffcorev1.Service) (netip.Addr, bool, error) {
	var all skiffcorev1.ServiceList
	if err := r.List(ctx, &all); err != nil {
		return netip.Addr{}, false, err
	}
	used := newBitmap(r.ips.size)
	used.set(0)
	used.set(r.ips.size - 1)
	for i := range all.Items {
		if a, err := netip.ParseAddr(all.Items[i].Spec.ClusterIP); err == nil && r.ips.prefix.Contains(a) {
			used.set(r.ips.offset(a))
		}
	}
	off, err := claimFirstFree(used, func(off int) error {
		_, err := r.ledger.claimIP(ctx, svc, r.ips.at(off), picked)
		return err
	})
	if errors.Is(err, errRangeFull) {
		return netip.Addr{}, false, &refusal{ConditionClusterIPAllocated, "ClusterIPRangeFull",
			fmt.Sprintf("no cluster IP left in %s", r.ips.prefix), true}
	}
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("claiming a cluster IP: %w", err)
	}
	return r.ips.at(off), true, nil
}

// errRangeFull means no value of a range is free.
var errRangeFull = errors.New("range full")

// claimFirstFree tries the free offsets of used, from a random one, until
// claim wins one. A picked claim succeeds only by creating its entry, so
// the offset returned is always this pass's own.
func claimFirstFree(used *bitmap, claim func(off int) error) (int, error) {
	tries := 0
	for off := range used.freeFrom(rand.IntN(used.size)) {
		err := claim(off)
		if !errors.Is(err, errTaken) {
			return off, err
		}
		if tries++; tries == maxTries {
			return 0, fmt.Errorf("%d values in a row were taken although the cache showed them free; retrying", tries)
		}
	}
	return 0, errRangeFull
}

// allocateNodePorts gives each port of a NodePort or LoadBalancer Service
// its node port, and clears them from any other type, as upstream does
// when the type changes. The annotation records what the ledger holds.
func (r *Reconciler) allocateNodePorts(ctx context.Context, svc *skiffcorev1.Service, claimed *claims) error {
	spec := &svc.Spec
	wantsNodePorts := spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer
	// A LoadBalancer may opt out of new node ports; requested ones stay.
	allocateNew := spec.Type == corev1.ServiceTypeNodePort || ptr.Deref(spec.AllocateLoadBalancerNodePorts, true)
	var held []int32
	var refusals []error
	var used *bitmap
	for i := range spec.Ports {
		p := &spec.Ports[i]
		switch {
		case !wantsNodePorts:
			p.NodePort = 0
		case p.NodePort != 0:
			created, err := r.claimRequestedPort(ctx, svc, p.NodePort)
			if err == nil {
				held = append(held, p.NodePort)
				if created {
					claimed.ports = append(claimed.ports, p.NodePort)
				}
			} else if errors.As(err, new(*refusal)) {
				refusals = append(refusals, err)
			} else {
				return err
			}
		case allocateNew:
			if used == nil {
				var err error
				if used, err = r.usedNodePorts(ctx); err != nil {
					return err
				}
			}
			n, err := r.claimFreePort(ctx, svc, used)
			if err != nil {
				if errors.As(err, new(*refusal)) {
					refusals = append(refusals, err)
					continue
				}
				return err
			}
			p.NodePort = n
			used.set(r.ports.offset(n))
			held = append(held, n)
			claimed.ports = append(claimed.ports, n)
		}
	}
	setHeldNodePorts(svc, held)
	if len(refusals) > 0 {
		return refusals[0]
	}
	return nil
}

// claimRequestedPort claims a node port the user asked for, or says why
// not. Two ports of one Service may share a node port (TCP and UDP).
func (r *Reconciler) claimRequestedPort(ctx context.Context, svc *skiffcorev1.Service, n int32) (bool, error) {
	if !r.ports.contains(n) {
		return false, &refusal{ConditionNodePortsAllocated, "NodePortOutOfRange",
			fmt.Sprintf("spec.ports[].nodePort %d: not in the valid range %s", n, r.ports), false}
	}
	created, err := r.ledger.claimPort(ctx, svc, n, listed)
	if errors.Is(err, errTaken) {
		return false, &refusal{ConditionNodePortsAllocated, "NodePortAlreadyAllocated",
			fmt.Sprintf("spec.ports[].nodePort %d: provided port is already allocated", n), true}
	}
	return created, err
}

// usedNodePorts is the cache's view of the node ports every Service has.
func (r *Reconciler) usedNodePorts(ctx context.Context) (*bitmap, error) {
	var all skiffcorev1.ServiceList
	if err := r.List(ctx, &all); err != nil {
		return nil, err
	}
	used := newBitmap(r.ports.size)
	for i := range all.Items {
		for _, p := range all.Items[i].Spec.Ports {
			if r.ports.contains(p.NodePort) {
				used.set(r.ports.offset(p.NodePort))
			}
		}
	}
	return used, nil
}

// claimFreePort claims a node port the cache shows free.
func (r *Reconciler) claimFreePort(ctx context.Context, svc *skiffcorev1.Service, used *bitmap) (int32, error) {
	off, err := claimFirstFree(used, func(off int) error {
		_, err := r.ledger.claimPort(ctx, svc, r.ports.at(off), picked)
		return err
	})
	if errors.Is(err, errRangeFull) {
		return 0, &refusal{ConditionNodePortsAllocated, "NodePortRangeFull",
			fmt.Sprintf("no node port left in %s", r.ports), true}
	}
	if err != nil {
		return 0, fmt.Errorf("claiming a node port: %w", err)
	}
	return r.ports.at(off), nil
}

// heldNodePorts reads the node ports the annotation says the ledger holds.
func heldNodePorts(svc *skiffcorev1.Service) []int32 {
	var held []int32
	for f := range strings.SplitSeq(svc.Annotations[NodePortsAnnotation], ",") {
		if n, err := strconv.ParseInt(f, 10, 32); err == nil {
			held = append(held, int32(n))
		}
	}
	return held
}

// setHeldNodePorts records held, sorted and without repeats, in the
// annotation; none removes it.
func setHeldNodePorts(svc *skiffcorev1.Service, held []int32) {
	slices.Sort(held)
	held = slices.Compact(held)
	if len(held) == 0 {
		delete(svc.Annotations, NodePortsAnnotation)
		return
	}
	fields := make([]string, len(held))
	for i, n := range held {
		fields[i] = strconv.Itoa(int(n))
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[NodePortsAnnotation] = strings.Join(fields, ",")
}

// releaseAll gives back everything svc holds and then lets it go. An
// ExternalName Service first loses its cluster IP and node ports from its
// spec, as upstream clears them on that type change, so that no two live
// Services ever show the same address.
func (r *Reconciler) releaseAll(ctx context.Context, svc *skiffcorev1.Service) error {
	if !controllerutil.ContainsFinalizer(svc, Finalizer) {
		return nil
	}
	base := svc.DeepCopy()
	if svc.DeletionTimestamp.IsZero() {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
		delete(svc.Annotations, NodePortsAnnotation)
		if err := r.Patch(ctx, svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("clearing the allocations of an ExternalName Service: %w", err)
		}
		base = svc.DeepCopy()
	}
	if err := r.ledger.releaseAll(ctx, svc); err != nil {
		return err
	}
	controllerutil.RemoveFinalizer(svc, Finalizer)
	if err := r.Patch(ctx, svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	logf.FromContext(ctx).Info("released the cluster IP and node ports")
	return nil
}

// updateStatus sets the two allocation conditions from this pass's
// refusals, with an Event for each new one.
func (r *Reconciler) updateStatus(ctx context.Context, svc *skiffcorev1.Service, refusals []*refusal) (ctrl.Result, error) {
	base := svc.DeepCopy()
	var result ctrl.Result
	for _, cond := range []string{ConditionClusterIPAllocated, ConditionNodePortsAllocated} {
		c := metav1.Condition{Type: cond, Status: metav1.ConditionTrue, Reason: "Allocated", ObservedGeneration: svc.Generation}
		for _, ref := range refusals {
			if ref.condition == cond {
				c.Status, c.Reason, c.Message = metav1.ConditionFalse, ref.reason, ref.message
				if ref.retry {
					result.RequeueAfter = r.opts.retryFull
				}
			}
		}
		if cond == ConditionNodePortsAllocated && c.Status == metav1.ConditionTrue && !hasNodePorts(svc) {
			meta.RemoveStatusCondition(&svc.Status.Conditions, cond)
			continue
		}
		if old := meta.FindStatusCondition(base.Status.Conditions, cond); c.Status == metav1.ConditionFalse && (old == nil || old.Reason != c.Reason) {
			r.Recorder.Eventf(svc, nil, corev1.EventTypeWarning, c.Reason, "Allocate", c.Message)
		}
		meta.SetStatusCondition(&svc.Status.Conditions, c)
	}
	if equality.Semantic.DeepEqual(base.Status, svc.Status) {
		return result, nil
	}
	if err := r.Status().Patch(ctx, svc, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return result, fmt.Errorf("writing the allocation conditions: %w", err)
	}
	return result, nil
}

func hasNodePorts(svc *skiffcorev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}
