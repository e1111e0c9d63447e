package dns_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	clusterdns "skiff.dev/skiff/nodeagent/dns"
)

// createKV creates, in namespace ns, a headless Service kv with its
// EndpointSlice (kv-0 named in the slice, kv-1 only through its pod's
// hostname and subdomain) and that pod, as a StatefulSet would have them.
func createKV(t *testing.T, ns string) {
	t.Helper()
	kv := service(ns, "kv", corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone,
		Ports:     []corev1.ServicePort{{Name: "client", Protocol: corev1.ProtocolTCP, Port: 2379}},
	})
	p := pod(ns, "kv-1", "kv-1", "kv")
	p.Spec.Containers = []corev1.Container{{Name: "kv", Image: "skiff.dev/test/echo:v1"}}
	s := slice(ns, "kv-a", "kv", []discoveryv1.EndpointPort{port("client", corev1.ProtocolTCP, 2379)},
		endpoint("10.244.0.6", "kv-0", "", nil),
		endpoint("10.244.0.12", "", "kv-1", nil),
	)
	for _, obj := range []client.Object{&kv, &p, &s} {
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// createWeb creates a ClusterIP Service web in ns. No allocator runs in
// this suite, so the test picks the address.
func createWeb(t *testing.T, ns, ip string) *skiffcorev1.Service {
	t.Helper()
	web := service(ns, "web", corev1.ServiceSpec{
		ClusterIP: ip, ClusterIPs: []string{ip},
		Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
	})
	if err := env.Client.Create(context.Background(), &web); err != nil {
		t.Fatalf("creating service web: %v", err)
	}
	return &web
}

// expect waits until the server answers name with exactly want.
func expect(t *testing.T, srv *clusterdns.Server, name string, qtype uint16, rcode int, want ...string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		resp := query(t, "udp", srv.Addr(), name, qtype)
		if got := short(resp.Answer); resp.Rcode != rcode || !slices.Equal(got, append([]string{}, want...)) {
			return fmt.Errorf("%s %s = %s %q, want %s %q", name, dns.TypeToString[qtype], dns.RcodeToString[resp.Rcode], got, dns.RcodeToString[rcode], want)
		}
		return nil
	})
}

func TestReaderSourceServesTheCluster(t *testing.T) {
	ns := env.Namespace(t, "dns-reader-")
	createKV(t, ns)
	web := createWeb(t, ns, "10.96.100.1")
	srv, err := clusterdns.New(clusterdns.Config{
		Addr: "127.0.0.1:0", Source: clusterdns.ReaderSource{Reader: env.Client}, Refresh: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the cluster DNS server", srv.Start)

	svc := func(name string) string { return name + "." + ns + ".svc.cluster.local." }
	expect(t, srv, svc("web"), dns.TypeA, dns.RcodeSuccess, "A 10.96.100.1")
	expect(t, srv, "_http._tcp."+svc("web"), dns.TypeSRV, dns.RcodeSuccess, "SRV 0 100 80 "+svc("web"))
	expect(t, srv, svc("kv"), dns.TypeA, dns.RcodeSuccess, "A 10.244.0.12", "A 10.244.0.6")
	expect(t, srv, "kv-0."+svc("kv"), dns.TypeA, dns.RcodeSuccess, "A 10.244.0.6")
	expect(t, srv, "kv-1."+svc("kv"), dns.TypeA, dns.RcodeSuccess, "A 10.244.0.12")
	expect(t, srv, "_client._tcp."+svc("kv"), dns.TypeSRV, dns.RcodeSuccess,
		"SRV 0 100 2379 kv-0."+svc("kv"), "SRV 0 100 2379 kv-1."+svc("kv"))

	// A deleted Service is gone at the next refresh.
	if err := env.Client.Delete(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	expect(t, srv, svc("web"), dns.TypeA, dns.RcodeNameError)
}

func TestCacheEventsRebuildTheZone(t *testing.T) {
	ns := env.Namespace(t, "dns-cache-")
	c, err := cache.New(env.FastConfig(), cache.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	// An hour between refreshes: only the informers' events can bring the
	// changes below in time.
	srv, err := clusterdns.New(clusterdns.Config{
		Addr: "127.0.0.1:0", Source: clusterdns.ReaderSource{Reader: c}, Refresh: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := clusterdns.NotifyOnChange(ctx, c, srv.Changed); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the informer cache", c.Start)
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the informer cache did not sync")
	}
	testenv.Run(t, "the cluster DNS server", srv.Start)

	svc := func(name string) string { return name + "." + ns + ".svc.cluster.local." }
	expect(t, srv, svc("web"), dns.TypeA, dns.RcodeNameError)
	web := createWeb(t, ns, "10.96.100.2")
	expect(t, srv, svc("web"), dns.TypeA, dns.RcodeSuccess, "A 10.96.100.2")
	createKV(t, ns)
	expect(t, srv, "kv-1."+svc("kv"), dns.TypeA, dns.RcodeSuccess, "A 10.244.0.12")

	// An update: the Service turns into an ExternalName.
	patch := client.MergeFrom(web.DeepCopy())
	web.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com"}
	if err := env.Client.Patch(context.Background(), web, patch); err != nil {
		t.Fatal(err)
	}
	expect(t, srv, svc("web"), dns.TypeA, dns.RcodeSuccess, "CNAME db.example.com.")
}
