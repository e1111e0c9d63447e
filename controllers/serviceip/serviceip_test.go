package serviceip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

const timeout = 60 * time.Second

func newService(ns, name string) *skiffcorev1.Service {
	svc := &skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	svc.Spec.Selector = map[string]string{"app": name}
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	return svc
}

func nodePortService(ns, name string, nodePorts ...int32) *skiffcorev1.Service {
	svc := newService(ns, name)
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}
	for i, n := range nodePorts {
		svc.Spec.Ports[i].NodePort = n
	}
	return svc
}

// startAllocator runs the allocator in a manager of its own; a test may
// start two to race them.
func startAllocator(t *testing.T, cfg Config) {
	t.Helper()
	env.StartManager(t, func(m ctrl.Manager) error {
		return setup(m, cfg, options{retryFull: time.Second})
	})
}

// allocatorAndNamespace starts an allocator with cfg and returns a fresh
// namespace whose Services are deleted, and their ledger entries freed,
// before the allocator stops.
func allocatorAndNamespace(t *testing.T, cfg Config, prefix string) string {
	t.Helper()
	startAllocator(t, cfg)
	ns := env.Namespace(t, prefix)
	deleteAllOnCleanup(t, ns)
	return ns
}

// deleteAllOnCleanup deletes the namespace's Services while the allocator
// still runs (cleanups run last first) and waits until their finalizer is
// gone, so that no test leaves ledger entries to the next.
func deleteAllOnCleanup(t *testing.T, ns string) {
	t.Cleanup(func() {
		ctx := context.Background()
		if err := env.Client.DeleteAllOf(ctx, &skiffcorev1.Service{}, client.InNamespace(ns)); err != nil {
			t.Errorf("deleting the services: %v", err)
		}
		testenv.Eventually(t, timeout, func() error {
			var list skiffcorev1.ServiceList
			if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return err
			}
			if len(list.Items) > 0 {
				return fmt.Errorf("%d services still being deleted", len(list.Items))
			}
			return nil
		})
	})
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

// waitFor polls the Service until check accepts it.
func waitFor(t *testing.T, ns, name string, check func(*skiffcorev1.Service) error) *skiffcorev1.Service {
	t.Helper()
	var svc skiffcorev1.Service
	testenv.Eventually(t, timeout, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
			return err
		}
		return check(&svc)
	})
	return &svc
}

func allocated(svc *skiffcorev1.Service) error {
	if svc.Spec.ClusterIP == "" {
		return fmt.Errorf("%s has no cluster IP yet", svc.Name)
	}
	for _, p := range svc.Spec.Ports {
		if hasNodePorts(svc) && p.NodePort == 0 {
			return fmt.Errorf("%s port %s has no node port yet", svc.Name, p.Name)
		}
	}
	return nil
}

func refused(cond, reason string) func(*skiffcorev1.Service) error {
	return func(svc *skiffcorev1.Service) error {
		c := meta.FindStatusCondition(svc.Status.Conditions, cond)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != reason {
			return fmt.Errorf("%s: condition %s is %+v, want False/%s", svc.Name, cond, c, reason)
		}
		return nil
	}
}

// warned waits for a Warning Event with reason about the Service.
func warned(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var events eventsv1.EventList
		if err := env.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no %s Warning Event for %s among %d events", reason, name, len(events.Items))
	})
}

// TestTwoAllocatorsNeverShareAValue races two managers over 24 NodePort
// Services created at once, in ranges barely larger than needed (30
// addresses, 50 ports for 48), so that random picks collide often. Every
// Service must end with its own address and ports, each backed by exactly
// one ledger entry that names it.
func TestTwoAllocatorsNeverShareAValue(t *testing.T) {
	ctx := context.Background()
	cfg := Config{ServiceClusterIPRange: "10.96.1.0/27", ServiceNodePortRange: "31000-31049"}
	startAllocator(t, cfg)
	ns := allocatorAndNamespace(t, cfg, "race-")

	const n = 24
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- env.Client.Create(ctx, nodePortService(ns, fmt.Sprintf("s%d", i))) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	ipOwner := map[string]string{}
	portOwner := map[int32]string{}
	for i := range n {
		svc := waitFor(t, ns, fmt.Sprintf("s%d", i), allocated)
		if other, dup := ipOwner[svc.Spec.ClusterIP]; dup {
			t.Errorf("cluster IP %s given to both %s and %s", svc.Spec.ClusterIP, other, svc.Name)
		}
		ipOwner[svc.Spec.ClusterIP] = svc.Name
		if !netip.MustParsePrefix("10.96.1.0/27").Contains(netip.MustParseAddr(svc.Spec.ClusterIP)) {
			t.Errorf("%s got %s, outside the range", svc.Name, svc.Spec.ClusterIP)
		}
		if len(svc.Spec.IPFamilies) != 1 || svc.Spec.IPFamilies[0] != corev1.IPv4Protocol ||
			svc.Spec.IPFamilyPolicy == nil || *svc.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack ||
			len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
			t.Errorf("%s: upstream's defaults missing: %+v", svc.Name, svc.Spec)
		}
		for _, p := range svc.Spec.Ports {
			if other, dup := portOwner[p.NodePort]; dup {
				t.Errorf("node port %d given to both %s and %s", p.NodePort, other, svc.Name)
			}
			portOwner[p.NodePort] = svc.Name
		}
	}

	// The ledger agrees, with nothing left over from the lost races (the
	// losers gave back what they claimed).
	testenv.Eventually(t, timeout, func() error {
		var ips networkingv1.IPAddressList
		if err := env.Client.List(ctx, &ips, client.MatchingLabels{labelServiceNamespace: ns}); err != nil {
			return err
		}
		var ports corev1.ConfigMapList
		if err := env.Client.List(ctx, &ports, client.InNamespace(LedgerNamespace), client.MatchingLabels{labelServiceNamespace: ns}); err != nil {
			return err
		}
		if len(ips.Items) != n || len(ports.Items) != 2*n {
			return fmt.Errorf("ledger holds %d IPs and %d ports, want %d and %d", len(ips.Items), len(ports.Items), n, 2*n)
		}
		for _, ip := range ips.Items {
			if p := ip.Spec.ParentRef; p == nil || ipOwner[ip.Name] != p.Name || p.Resource != "services" || p.Group != "core.skiff.dev" {
				return fmt.Errorf("IPAddress %s names %+v, want Service %s", ip.Name, p, ipOwner[ip.Name])
			}
		}
		for _, cm := range ports.Items {
			var port int32
			fmt.Sscanf(cm.Name, "nodeport-%d", &port)
			if portOwner[port] != cm.Labels[labelServiceName] {
				return fmt.Errorf("%s names %s, want %s", cm.Name, cm.Labels[labelServiceName], portOwner[port])
			}
		}
		return nil
	})
}

// TestRequestsHeadlessAndRefusals covers what a user may ask for: a
// chosen address and node port are honoured; one outside the range or
// already held is refused with a Warning Event and a False condition; a
// headless Service gets no address; and a cluster IP cannot change once set.
func TestRequestsHeadlessAndRefusals(t *testing.T) {
	ctx := context.Background()
	ns := allocatorAndNamespace(t, Config{ServiceClusterIPRange: "10.96.2.0/24", ServiceNodePortRange: "31100-31199"}, "requests-")

	chosen := nodePortService(ns, "chosen", 31150)
	chosen.Spec.ClusterIP = "10.96.2.10"
	create(t, chosen)
	got := waitFor(t, ns, "chosen", allocated)
	if got.Spec.ClusterIP != "10.96.2.10" || got.Spec.Ports[0].NodePort != 31150 || got.Spec.Ports[1].NodePort == 0 {
		t.Fatalf("requests not honoured: clusterIP %s, ports %+v", got.Spec.ClusterIP, got.Spec.Ports)
	}
	waitFor(t, ns, "chosen", func(svc *skiffcorev1.Service) error {
		if !meta.IsStatusConditionTrue(svc.Status.Conditions, ConditionClusterIPAllocated) ||
			!meta.IsStatusConditionTrue(svc.Status.Conditions, ConditionNodePortsAllocated) {
			return fmt.Errorf("conditions %+v, want both allocated", svc.Status.Conditions)
		}
		return nil
	})

	taken := nodePortService(ns, "taken", 31150)
	taken.Spec.ClusterIP = "10.96.2.10"
	outside := newService(ns, "outside")
	outside.Spec.ClusterIP = "10.0.0.50"
	headless := newService(ns, "headless")
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	create(t, taken, outside, headless)

	waitFor(t, ns, "taken", refused(ConditionClusterIPAllocated, "ClusterIPAlreadyAllocated"))
	waitFor(t, ns, "taken", refused(ConditionNodePortsAllocated, "NodePortAlreadyAllocated"))
	warned(t, ns, "taken", "ClusterIPAlreadyAllocated")
	warned(t, ns, "taken", "NodePortAlreadyAllocated")
	waitFor(t, ns, "outside", refused(ConditionClusterIPAllocated, "ClusterIPOutOfRange"))
	warned(t, ns, "outside", "ClusterIPOutOfRange")

	h := waitFor(t, ns, "headless", func(svc *skiffcorev1.Service) error {
		if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != corev1.ClusterIPNone || len(svc.Spec.IPFamilies) != 1 {
			return fmt.Errorf("headless spec %+v, want clusterIPs [None] and ipFamilies [IPv4]", svc.Spec)
		}
		return nil
	})
	if h.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("headless cluster IP became %q", h.Spec.ClusterIP)
	}
	var ips networkingv1.IPAddressList
	if err := env.Client.List(ctx, &ips, client.MatchingLabels{labelServiceNamespace: ns}); err != nil {
		t.Fatal(err)
	}
	if len(ips.Items) != 1 || ips.Items[0].Name != "10.96.2.10" {
		t.Errorf("ledger holds %d IPs, want only chosen's 10.96.2.10: %+v", len(ips.Items), ips.Items)
	}

	// The cluster IP is set once: the CRD refuses a change.
	err := tryUpdateService(got, func(svc *skiffcorev1.Service) {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "10.96.2.11", []string{"10.96.2.11"}
	})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "may not be changed once set") {
		t.Errorf("changing the cluster IP: got %v, want the CRD's refusal", err)
	}

	// Once its holder goes, the refused Service gets what it asked for.
	if err := env.Client.Delete(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ns, "taken", func(svc *skiffcorev1.Service) error {
		if !settled(svc) {
			return fmt.Errorf("taken is not granted yet: %+v", svc.Status.Conditions)
		}
		return nil
	})
}

// TestReleaseAndReuse fills a two-address range, shows a third Service
// waiting with ClusterIPRangeFull, and gives it the address of a deleted
// one. Node ports follow the type: a NodePort Service turned ClusterIP
// gives its ports back, and an ExternalName one gives back everything.
func TestReleaseAndReuse(t *testing.T) {
	ctx := context.Background()
	ns := allocatorAndNamespace(t, Config{ServiceClusterIPRange: "10.96.3.0/30", ServiceNodePortRange: "31200-31203"}, "reuse-")

	create(t, nodePortService(ns, "a"), nodePortService(ns, "b"))
	a := waitFor(t, ns, "a", allocated)
	waitFor(t, ns, "b", allocated)

	create(t, newService(ns, "c"))
	waitFor(t, ns, "c", refused(ConditionClusterIPAllocated, "ClusterIPRangeFull"))
	warned(t, ns, "c", "ClusterIPRangeFull")

	if err := env.Client.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := waitFor(t, ns, "c", allocated)
	if c.Spec.ClusterIP != a.Spec.ClusterIP {
		t.Errorf("c got %s, want a's freed %s", c.Spec.ClusterIP, a.Spec.ClusterIP)
	}
	// a's node ports are free again: d takes all of them.
	create(t, nodePortService(ns, "d", a.Spec.Ports[0].NodePort, a.Spec.Ports[1].NodePort))
	waitFor(t, ns, "d", func(svc *skiffcorev1.Service) error {
		if !meta.IsStatusConditionTrue(svc.Status.Conditions, ConditionNodePortsAllocated) {
			return fmt.Errorf("d's node ports: %+v", svc.Status.Conditions)
		}
		return nil
	})

	// b turned ClusterIP gives back its node ports; its address stays.
	b := waitFor(t, ns, "b", allocated)
	bIP, bPorts := b.Spec.ClusterIP, []int32{b.Spec.Ports[0].NodePort, b.Spec.Ports[1].NodePort}
	updateService(t, b, func(svc *skiffcorev1.Service) { svc.Spec.Type = corev1.ServiceTypeClusterIP })
	waitFor(t, ns, "b", func(svc *skiffcorev1.Service) error {
		if svc.Spec.Ports[0].NodePort != 0 || svc.Annotations[NodePortsAnnotation] != "" {
			return fmt.Errorf("b still lists node ports %+v", svc.Spec.Ports)
		}
		if svc.Spec.ClusterIP != bIP {
			return fmt.Errorf("b's cluster IP changed to %s", svc.Spec.ClusterIP)
		}
		return nil
	})
	waitGone(t, &corev1.ConfigMap{}, client.ObjectKey{Namespace: LedgerNamespace, Name: portEntryName(bPorts[0])})
	waitGone(t, &corev1.ConfigMap{}, client.ObjectKey{Namespace: LedgerNamespace, Name: portEntryName(bPorts[1])})

	// b turned ExternalName gives back its address and its finalizer.
	b = waitFor(t, ns, "b", allocated)
	updateService(t, b, func(svc *skiffcorev1.Service) {
		svc.Spec.Type = corev1.ServiceTypeExternalName
		svc.Spec.ExternalName = "example.com"
	})
	waitFor(t, ns, "b", func(svc *skiffcorev1.Service) error {
		if svc.Spec.ClusterIP != "" || len(svc.Finalizers) > 0 {
			return fmt.Errorf("ExternalName b keeps clusterIP %q and finalizers %v", svc.Spec.ClusterIP, svc.Finalizers)
		}
		return nil
	})
	waitGone(t, &networkingv1.IPAddress{}, client.ObjectKey{Name: bIP})
}

func waitGone(t *testing.T, obj client.Object, key client.ObjectKey) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		err := env.Client.Get(context.Background(), key, obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(err, fmt.Errorf("%s still exists", key))
	})
}

// TestRestartKeepsAllocations: the allocator keeps nothing in memory. A
// new process after a restart leaves the existing allocations as they
// are and never hands them out again, because the ledger holds them.
func TestRestartKeepsAllocations(t *testing.T) {
	cfg := Config{ServiceClusterIPRange: "10.96.4.0/28", ServiceNodePortRange: "31300-31329"}
	ns := env.Namespace(t, "restart-")
	stopFirst := env.StartManager(t, func(m ctrl.Manager) error {
		return setup(m, cfg, options{retryFull: time.Second})
	})
	for i := range 6 {
		create(t, nodePortService(ns, fmt.Sprintf("before%d", i)))
	}
	before := map[string]*skiffcorev1.Service{}
	for i := range 6 {
		svc := waitFor(t, ns, fmt.Sprintf("before%d", i), allocated)
		before[svc.Name] = svc
	}
	stopFirst()

	startAllocator(t, cfg)
	deleteAllOnCleanup(t, ns)
	for i := range 6 {
		create(t, nodePortService(ns, fmt.Sprintf("after%d", i)))
	}
	ipOwner := map[string]string{}
	portOwner := map[int32]string{}
	for _, prefix := range []string{"before", "after"} {
		for i := range 6 {
			svc := waitFor(t, ns, fmt.Sprintf("%s%d", prefix, i), allocated)
			if old, ok := before[svc.Name]; ok && (svc.Spec.ClusterIP != old.Spec.ClusterIP || svc.Spec.Ports[0].NodePort != old.Spec.Ports[0].NodePort) {
				t.Errorf("%s's allocations changed across the restart", svc.Name)
			}
			if other, dup := ipOwner[svc.Spec.ClusterIP]; dup {
				t.Errorf("cluster IP %s given to both %s and %s", svc.Spec.ClusterIP, other, svc.Name)
			}
			ipOwner[svc.Spec.ClusterIP] = svc.Name
			for _, p := range svc.Spec.Ports {
				if other, dup := portOwner[p.NodePort]; dup {
					t.Errorf("node port %d given to both %s and %s", p.NodePort, other, svc.Name)
				}
				portOwner[p.NodePort] = svc.Name
			}
		}
	}
}

// tryUpdateService changes the Service as mutate says, from a fresh copy:
// the controller may write it at any time, so a conflict is retried until
// the apiserver judges the change itself.
func tryUpdateService(svc *skiffcorev1.Service, mutate func(*skiffcorev1.Service)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh := &skiffcorev1.Service{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(svc), fresh); err != nil {
			return err
		}
		mutate(fresh)
		return env.Client.Update(context.Background(), fresh)
	})
}

// updateService is tryUpdateService for a change that must be accepted.
func updateService(t *testing.T, svc *skiffcorev1.Service, mutate func(*skiffcorev1.Service)) {
	t.Helper()
	if err := tryUpdateService(svc, mutate); err != nil {
		t.Fatalf("updating Service %s: %v", svc.Name, err)
	}
}
