package serviceip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The ledger records which Service holds each cluster IP and node port in
// objects named after the value, so that the apiserver's create-if-absent
// settles every race: two managers (or two workers) that pick the same
// value both try to create the same name, and exactly one succeeds.
//
// Cluster IPs use upstream's own ledger, networking.k8s.io/v1 IPAddress,
// whose spec.parentRef names the Service. Node ports have no upstream kind,
// so each taken port is a ConfigMap "nodeport-<n>" in LedgerNamespace,
// labelled with its Service. One object per port, rather than one bitmap
// ConfigMap, means allocations for different Services never conflict with
// each other and need no retry loop; the cost is one small object per port.
const (
	// LedgerNamespace holds the node port ledger.
	LedgerNamespace = "skiff-system"
	// ManagedBy is the managed-by label of skiff's IPAddresses. It differs
	// from upstream's "ipallocator.k8s.io" so that kube-apiserver's repair
	// loop, which knows only core Services, leaves them alone.
	ManagedBy = "serviceip.skiff.dev"

	labelManagedBy        = "ipaddress.kubernetes.io/managed-by"
	labelIPFamily         = "ipaddress.kubernetes.io/ip-family"
	labelServiceNamespace = "serviceip.skiff.dev/service-namespace"
	labelServiceName      = "serviceip.skiff.dev/service-name"
)

// errTaken means another Service holds the value.
var errTaken = errors.New("held by another Service")

// ledger reads and writes the allocation objects. Reads go to the
// apiserver: a claim is decided there, never in a cache.
type ledger struct {
	client client.Client
	live   client.Reader
}

// ownerLabels tie a ledger entry to its Service, so that everything a
// Service holds can be listed when it goes. The finalizer guarantees that
// two Services of the same name never exist at once.
func ownerLabels(svc *skiffcorev1.Service) map[string]string {
	return map[string]string{
		labelServiceNamespace: svc.Namespace,
		labelServiceName:      svc.Name,
	}
}

func parentRef(svc *skiffcorev1.Service) *networkingv1.ParentReference {
	return &networkingv1.ParentReference{
		Group:     skiffcorev1.GroupVersion.Group,
		Resource:  "services",
		Namespace: svc.Namespace,
		Name:      svc.Name,
	}
}

// claimKind says how a value came to be claimed, which decides whether an
// entry of the same Service counts as its own.
type claimKind int

const (
	// picked: the allocator chose a free value. Only a create wins it: an
	// entry of the same Service is another worker's pick (a second
	// manager's), which that worker's own write may record.
	picked claimKind = iota
	// listed: the Service's spec names the value (the user asked for it,
	// or an earlier write recorded it). An entry of the same Service is
	// its own, so that a pass after a crash or a failed write keeps it.
	listed
)

// claimIP takes addr for svc; created says whether this call made the
// entry.
func (l ledger) claimIP(ctx context.Context, svc *skiffcorev1.Service, addr netip.Addr, kind claimKind) (created bool, err error) {
	labels := ownerLabels(svc)
	labels[labelManagedBy] = ManagedBy
	labels[labelIPFamily] = string(corev1.IPv4Protocol)
	ip := &networkingv1.IPAddress{
		ObjectMeta: metav1.ObjectMeta{Name: addr.String(), Labels: labels},
		Spec:       networkingv1.IPAddressSpec{ParentRef: parentRef(svc)},
	}
	err = l.client.Create(ctx, ip)
	if !apierrors.IsAlreadyExists(err) {
		return err == nil, err
	}
	if kind == picked {
		return false, errTaken
	}
	var held networkingv1.IPAddress
	if err := l.live.Get(ctx, client.ObjectKey{Name: addr.String()}, &held); err != nil {
		return false, fmt.Errorf("reading the holder of cluster IP %s: %w", addr, err)
	}
	if p := held.Spec.ParentRef; p != nil && *p == *parentRef(svc) {
		return false, nil
	}
	return false, errTaken
}

// claimPort takes node port n for svc as claimIP does, creating the ledger
// namespace the first time.
func (l ledger) claimPort(ctx context.Context, svc *skiffcorev1.Service, n int32, kind claimKind) (created bool, err error) {
	entry := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace: LedgerNamespace, Name: portEntryName(n), Labels: ownerLabels(svc),
	}}
	err = l.client.Create(ctx, entry)
	if apierrors.IsNotFound(err) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LedgerNamespace}}
		if err := l.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("creating the node port ledger namespace %s: %w", LedgerNamespace, err)
		}
		err = l.client.Create(ctx, entry.DeepCopy())
	}
	if !apierrors.IsAlreadyExists(err) {
		return err == nil, err
	}
	if kind == picked {
		return false, errTaken
	}
	var held corev1.ConfigMap
	if err := l.live.Get(ctx, client.ObjectKeyFromObject(entry), &held); err != nil {
		return false, fmt.Errorf("reading the holder of node port %d: %w", n, err)
	}
	if heldBy(&held, svc) {
		return false, nil
	}
	return false, errTaken
}

func portEntryName(n int32) string { return "nodeport-" + strconv.Itoa(int(n)) }

func heldBy(obj metav1.Object, svc *skiffcorev1.Service) bool {
	l := obj.GetLabels()
	return l[labelServiceNamespace] == svc.Namespace && l[labelServiceName] == svc.Name
}

// releaseIP gives back addr if svc holds it.
func (l ledger) releaseIP(ctx context.Context, svc *skiffcorev1.Service, addr string) error {
	var held networkingv1.IPAddress
	if err := l.live.Get(ctx, client.ObjectKey{Name: addr}, &held); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !heldBy(&held, svc) {
		return nil
	}
	return l.deleteExact(ctx, &held)
}

// releasePort gives back node port n if svc holds it.
func (l ledger) releasePort(ctx context.Context, svc *skiffcorev1.Service, n int32) error {
	var held corev1.ConfigMap
	if err := l.live.Get(ctx, client.ObjectKey{Namespace: LedgerNamespace, Name: portEntryName(n)}, &held); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !heldBy(&held, svc) {
		return nil
	}
	return l.deleteExact(ctx, &held)
}

// releaseAll gives back every entry svc holds, including any a crash left
// between a claim and the Service write that would have recorded it.
func (l ledger) releaseAll(ctx context.Context, svc *skiffcorev1.Service) error {
	sel := client.MatchingLabels(ownerLabels(svc))
	var ips networkingv1.IPAddressList
	if err := l.live.List(ctx, &ips, sel); err != nil {
		return fmt.Errorf("listing the cluster IPs of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	var ports corev1.ConfigMapList
	if err := l.live.List(ctx, &ports, sel, client.InNamespace(LedgerNamespace)); err != nil {
		return fmt.Errorf("listing the node ports of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	var errs []error
	for i := range ips.Items {
		errs = append(errs, l.deleteExact(ctx, &ips.Items[i]))
	}
	for i := range ports.Items {
		errs = append(errs, l.deleteExact(ctx, &ports.Items[i]))
	}
	return errors.Join(errs...)
}

// deleteExact deletes the entry that was read, not a newer one of the same
// name that another Service may have claimed since.
func (l ledger) deleteExact(ctx context.Context, obj client.Object) error {
	uid := obj.GetUID()
	err := l.client.Delete(ctx, obj, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}
