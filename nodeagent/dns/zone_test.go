package dns_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	clusterdns "skiff.dev/skiff/nodeagent/dns"
)

// service is a Service in namespace ns with the given spec.
func service(ns, name string, spec corev1.ServiceSpec) skiffcorev1.Service {
	return skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

// slice is an IPv4 EndpointSlice of the Service svc.
func slice(ns, name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) skiffcorev1.EndpointSlice {
	return skiffcorev1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{skiffcorev1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       ports,
	}
}

// endpoint is an endpoint at ip; hostname and pod may be empty, ready nil
// means no condition.
func endpoint(ip, hostname, pod string, ready *bool) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	if hostname != "" {
		ep.Hostname = ptr.To(hostname)
	}
	if pod != "" {
		ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: pod}
	}
	return ep
}

func port(name string, proto corev1.Protocol, number int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To(number)}
}

// pod is a pod with a hostname and subdomain, as a StatefulSet makes them.
func pod(ns, name, hostname, subdomain string) skiffcorev1.Pod {
	return skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Hostname: hostname, Subdomain: subdomain},
	}
}

// shop is a namespace with every kind of Service the zone answers for.
func shop() *clusterdns.Snapshot {
	fqdn := skiffcorev1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "anon-fqdn", Labels: map[string]string{skiffcorev1.LabelServiceName: "anon"}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}},
	}
	return &clusterdns.Snapshot{
		Services: []skiffcorev1.Service{
			service("shop", "web", corev1.ServiceSpec{ClusterIP: "10.96.0.20", Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80},
				{Protocol: corev1.ProtocolTCP, Port: 9000},
			}}),
			service("shop", "dual", corev1.ServiceSpec{ClusterIP: "10.96.0.21", ClusterIPs: []string{"10.96.0.21", "fd00::21"}}),
			service("shop", "kv", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}),
			service("shop", "anon", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone}),
			service("shop", "early", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, PublishNotReadyAddresses: true}),
			service("shop", "pending", corev1.ServiceSpec{}),
			service("shop", "ext", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "DB.Example.com"}),
		},
		EndpointSlices: []skiffcorev1.EndpointSlice{
			slice("shop", "kv-a", "kv", []discoveryv1.EndpointPort{port("client", corev1.ProtocolTCP, 2379), port("", corev1.ProtocolTCP, 2380)},
				endpoint("10.244.0.6", "kv-0", "kv-0", ptr.To(true)),
				endpoint("10.244.0.12", "", "kv-1", nil),
				endpoint("10.244.0.13", "kv-2", "kv-2", ptr.To(false)),
				endpoint("10.244.0.14", "", "stray", ptr.To(true)),
			),
			slice("shop", "kv-b", "kv", []discoveryv1.EndpointPort{port("dns", corev1.ProtocolUDP, 53)},
				endpoint("10.244.0.6", "kv-0", "kv-0", ptr.To(true)),
			),
			slice("shop", "anon-a", "anon", nil, endpoint("10.244.1.7", "", "", nil)),
			fqdn,
			slice("shop", "early-a", "early", nil, endpoint("10.244.1.9", "", "", ptr.To(false))),
			slice("other", "kv-a", "kv", nil, endpoint("10.244.9.9", "kv-9", "", nil)),
		},
		Pods: []skiffcorev1.Pod{
			pod("shop", "kv-1", "kv-1", "kv"),
			pod("shop", "stray", "stray", "elsewhere"),
			pod("other", "kv-1", "imposter", "kv"),
		},
	}
}

// short renders records without name, TTL and class: "A 10.96.0.20".
func short(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String())[3:], " "))
	}
	slices.Sort(out)
	return out
}

func TestZoneLookup(t *testing.T) {
	const nx, ok = dns.RcodeNameError, dns.RcodeSuccess
	zone := clusterdns.NewZone("cluster.local", shop())
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"a ClusterIP service answers its address", "web.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.96.0.20"}},
		{"names are case-insensitive and may omit the final dot", "WEB.Shop.svc.cluster.local", dns.TypeA, ok, []string{"A 10.96.0.20"}},
		{"an IPv4-only service has no AAAA but exists", "web.shop.svc.cluster.local.", dns.TypeAAAA, ok, []string{}},
		{"ANY gives every record at the name", "web.shop.svc.cluster.local.", dns.TypeANY, ok, []string{"A 10.96.0.20"}},
		{"a dual-stack service answers A", "dual.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.96.0.21"}},
		{"a dual-stack service answers AAAA", "dual.shop.svc.cluster.local.", dns.TypeAAAA, ok, []string{"AAAA fd00::21"}},
		{"a named port has SRV to the service name", "_http._tcp.web.shop.svc.cluster.local.", dns.TypeSRV, ok,
			[]string{"SRV 0 100 80 web.shop.svc.cluster.local."}},
		{"a named port's SRV needs its protocol", "_http._udp.web.shop.svc.cluster.local.", dns.TypeSRV, nx, nil},
		{"an unnamed port has no SRV", "_9000._tcp.web.shop.svc.cluster.local.", dns.TypeSRV, nx, nil},
		{"a headless service answers its ready endpoints, once each", "kv.shop.svc.cluster.local.", dns.TypeA, ok,
			[]string{"A 10.244.0.12", "A 10.244.0.14", "A 10.244.0.6"}},
		{"an endpoint's hostname from its slice", "kv-0.kv.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.0.6"}},
		{"an endpoint's hostname from its pod's hostname and subdomain", "kv-1.kv.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.0.12"}},
		{"an unready endpoint has no name", "kv-2.kv.shop.svc.cluster.local.", dns.TypeA, nx, nil},
		{"a pod whose subdomain names another service lends no hostname", "stray.kv.shop.svc.cluster.local.", dns.TypeA, nx, nil},
		{"an endpoint without hostname is named by its dashed address", "10-244-0-14.kv.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.0.14"}},
		{"a headless named port has SRV per ready endpoint", "_client._tcp.kv.shop.svc.cluster.local.", dns.TypeSRV, ok, []string{
			"SRV 0 100 2379 10-244-0-14.kv.shop.svc.cluster.local.",
			"SRV 0 100 2379 kv-0.kv.shop.svc.cluster.local.",
			"SRV 0 100 2379 kv-1.kv.shop.svc.cluster.local.",
		}},
		{"each slice's ports apply to its own endpoints", "_dns._udp.kv.shop.svc.cluster.local.", dns.TypeSRV, ok,
			[]string{"SRV 0 100 53 kv-0.kv.shop.svc.cluster.local."}},
		{"a headless endpoint without a pod is named by its address", "10-244-1-7.anon.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.1.7"}},
		{"FQDN slices add nothing", "anon.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.1.7"}},
		{"publishNotReadyAddresses answers unready endpoints", "early.shop.svc.cluster.local.", dns.TypeA, ok, []string{"A 10.244.1.9"}},
		{"a service without an address yet exists without records", "pending.shop.svc.cluster.local.", dns.TypeA, ok, []string{}},
		{"an ExternalName service answers CNAME to an A question", "ext.shop.svc.cluster.local.", dns.TypeA, ok, []string{"CNAME db.example.com."}},
		{"an ExternalName service answers CNAME to a CNAME question", "ext.shop.svc.cluster.local.", dns.TypeCNAME, ok, []string{"CNAME db.example.com."}},
		{"an unknown service is NXDOMAIN", "missing.shop.svc.cluster.local.", dns.TypeA, nx, nil},
		{"a slice of another namespace's kv stays there", "kv.other.svc.cluster.local.", dns.TypeA, nx, nil},
		{"a namespace with services exists", "shop.svc.cluster.local.", dns.TypeA, ok, []string{}},
		{"svc exists", "svc.cluster.local.", dns.TypeA, ok, []string{}},
		{"an unknown name in the domain is NXDOMAIN", "nothing.cluster.local.", dns.TypeA, nx, nil},
		{"the apex has an SOA", "cluster.local.", dns.TypeSOA, ok,
			[]string{"SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"}},
		{"the schema version", "dns-version.cluster.local.", dns.TypeTXT, ok, []string{`TXT "1.1.0"`}},
		{"a cluster IP points back at its service", "20.0.96.10.in-addr.arpa.", dns.TypePTR, ok, []string{"PTR web.shop.svc.cluster.local."}},
		{"an IPv6 cluster IP points back at its service", mustReverse(t, "fd00::21"), dns.TypePTR, ok, []string{"PTR dual.shop.svc.cluster.local."}},
		{"a headless endpoint points back at its names", "6.0.244.10.in-addr.arpa.", dns.TypePTR, ok, []string{"PTR kv-0.kv.shop.svc.cluster.local."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, ours := zone.Lookup(tc.qname, tc.qtype)
			if !ours {
				t.Fatalf("Lookup(%s) is not the zone's; want an answer", tc.qname)
			}
			if res.Rcode != tc.rcode {
				t.Errorf("Lookup(%s) rcode = %s, want %s", tc.qname, dns.RcodeToString[res.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := short(res.Answer); !slices.Equal(got, append([]string{}, tc.want...)) {
				t.Errorf("Lookup(%s, %s) = %q, want %q", tc.qname, dns.TypeToString[tc.qtype], got, tc.want)
			}
			// A negative answer carries the SOA that says how long to cache it.
			if len(res.Answer) == 0 && (len(res.Ns) != 1 || res.Ns[0].Header().Rrtype != dns.TypeSOA || res.Ns[0].(*dns.SOA).Minttl != clusterdns.TTL) {
				t.Errorf("Lookup(%s) authority = %v, want the zone's SOA", tc.qname, res.Ns)
			}
			for _, rr := range res.Answer {
				if rr.Header().Ttl != clusterdns.TTL {
					t.Errorf("%s has TTL %d, want %d", rr, rr.Header().Ttl, clusterdns.TTL)
				}
			}
		})
	}
}

func TestZoneLeavesOtherNamesToUpstream(t *testing.T) {
	zone := clusterdns.NewZone("cluster.local", shop())
	for _, name := range []string{"example.com.", "local.", "cluster.local.example.com.", "1.1.1.1.in-addr.arpa."} {
		if res, ours := zone.Lookup(name, dns.TypeA); ours {
			t.Errorf("Lookup(%s) = %+v from the zone; want it left to upstream", name, res)
		}
	}
}

func TestZoneServesAnyClusterDomain(t *testing.T) {
	zone := clusterdns.NewZone("Corp.Internal.", shop())
	res, ours := zone.Lookup("web.shop.svc.corp.internal.", dns.TypeA)
	if got := short(res.Answer); !ours || !slices.Equal(got, []string{"A 10.96.0.20"}) {
		t.Errorf("web in corp.internal = %q (ours %v), want A 10.96.0.20", got, ours)
	}
	if _, ours := zone.Lookup("web.shop.svc.cluster.local.", dns.TypeA); ours {
		t.Errorf("cluster.local answered by a corp.internal zone")
	}
}

func mustReverse(t *testing.T, ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
