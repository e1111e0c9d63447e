package proxy

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/ebpf/nodeport"
)

func service(name, ip string, ports ...corev1.ServicePort) skiffcorev1.Service {
	s := skiffcorev1.Service{}
	s.Namespace, s.Name, s.Spec.ClusterIP, s.Spec.Ports = "default", name, ip, ports
	return s
}

type ep struct {
	addr                        string
	ready, serving, terminating *bool
}

func slice(svc string, ports map[string]int32, eps ...ep) skiffcorev1.EndpointSlice {
	s := skiffcorev1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}
	s.Namespace, s.Name = "default", svc+"-x"
	s.Labels = map[string]string{discoveryv1.LabelServiceName: svc}
	for name, port := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port)})
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving, Terminating: e.terminating}})
	}
	return s
}

func TestDesired(t *testing.T) {
	yes, no := ptr.To(true), ptr.To(false)
	http := corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}
	dns := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	vip := netip.MustParseAddr("10.96.0.10")
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	cases := []struct {
		name     string
		services []skiffcorev1.Service
		slices   []skiffcorev1.EndpointSlice
		want     []lb.Service
	}{
		{"ready endpoints are the backends, by the port's name",
			[]skiffcorev1.Service{service("web", "10.96.0.10", http)},
			[]skiffcorev1.EndpointSlice{slice("web", map[string]int32{"http": 8080}, ep{addr: "10.244.0.3", ready: yes}, ep{addr: "10.244.0.2"}, ep{addr: "10.244.0.4", ready: no})},
			[]lb.Service{{VIP: vip, Port: 80, Proto: lb.TCP, Backends: []netip.AddrPort{ap("10.244.0.2:8080"), ap("10.244.0.3:8080")}}}},
		{"no ready endpoint: terminating but serving ones carry the traffic",
			[]skiffcorev1.Service{service("web", "10.96.0.10", http)},
			[]skiffcorev1.EndpointSlice{slice("web", map[string]int32{"http": 8080}, ep{addr: "10.244.0.3", ready: no, serving: yes, terminating: yes}, ep{addr: "10.244.0.4", ready: no, serving: no, terminating: yes})},
			[]lb.Service{{VIP: vip, Port: 80, Proto: lb.TCP, Backends: []netip.AddrPort{ap("10.244.0.3:8080")}}}},
		{"a Service without endpoints refuses: no backends",
			[]skiffcorev1.Service{service("web", "10.96.0.10", http)}, nil,
			[]lb.Service{{VIP: vip, Port: 80, Proto: lb.TCP}}},
		{"every port, TCP and UDP",
			[]skiffcorev1.Service{service("dns", "10.96.0.10", dns, http)},
			[]skiffcorev1.EndpointSlice{slice("dns", map[string]int32{"dns": 5353, "http": 8080}, ep{addr: "10.244.0.5", ready: yes})},
			[]lb.Service{
				{VIP: vip, Port: 53, Proto: lb.UDP, Backends: []netip.AddrPort{ap("10.244.0.5:5353")}},
				{VIP: vip, Port: 80, Proto: lb.TCP, Backends: []netip.AddrPort{ap("10.244.0.5:8080")}},
			}},
		{"headless and unallocated Services have no VIP",
			[]skiffcorev1.Service{service("headless", "None", http), service("new", "", http)}, nil, nil},
		{"ClientIP affinity with upstream's default timeout",
			[]skiffcorev1.Service{func() skiffcorev1.Service {
				s := service("sticky", "10.96.0.10", http)
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				return s
			}()}, nil,
			[]lb.Service{{VIP: vip, Port: 80, Proto: lb.TCP, Affinity: 3 * time.Hour}}},
		{"a requested address the allocator refused is not programmed",
			[]skiffcorev1.Service{func() skiffcorev1.Service {
				s := service("thief", "10.96.0.10", http)
				s.Status.Conditions = []metav1.Condition{{Type: "ClusterIPAllocated", Status: metav1.ConditionFalse, Reason: "ClusterIPTaken"}}
				return s
			}()}, nil, nil},
		{"another Service's slices do not count",
			[]skiffcorev1.Service{service("web", "10.96.0.10", http)},
			[]skiffcorev1.EndpointSlice{slice("api", map[string]int32{"http": 8080}, ep{addr: "10.244.0.9", ready: yes})},
			[]lb.Service{{VIP: vip, Port: 80, Proto: lb.TCP}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Desired(tc.services, tc.slices); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Desired:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNodePorts(t *testing.T) {
	http := corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080}
	noPort := corev1.ServicePort{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP}
	nodePort := func(name string, ports ...corev1.ServicePort) skiffcorev1.Service {
		s := service(name, "10.96.0.20", ports...)
		s.Spec.Type = corev1.ServiceTypeNodePort
		return s
	}
	got := NodePorts(
		[]skiffcorev1.Service{nodePort("web", http, noPort), service("internal", "10.96.0.21", http)},
		[]skiffcorev1.EndpointSlice{slice("web", map[string]int32{"http": 8080, "metrics": 9090}, ep{addr: "10.244.0.7", ready: ptr.To(true)})},
	)
	want := []nodeport.NodePort{{Port: 30080, Proto: lb.TCP, Backends: []netip.AddrPort{netip.MustParseAddrPort("10.244.0.7:8080")}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NodePorts:\n got %+v\nwant %+v (only NodePort Services' ports that have a node port)", got, want)
	}
}
