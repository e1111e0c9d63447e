// Package proxy is the node agent's kube-proxy: it turns Services and
// their EndpointSlices into the eBPF datapath's services (ebpf/lb), so
// that a connection to a ClusterIP reaches a ready backend with no
// iptables in between.
package proxy

import (
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/ebpf/nodeport"
)

// defaultAffinityTimeout is upstream's ClientIP affinity timeout (3 hours).
const defaultAffinityTimeout = 10800 * time.Second

// Desired computes the datapath's services from the cluster's Services and
// EndpointSlices: one entry per ClusterIP and port, with the ready
// endpoints as backends. As upstream's kube-proxy, when no endpoint is
// ready the serving-and-terminating ones carry the traffic, so that a
// rollout's last pods still answer while they drain. It is pure.
func Desired(services []skiffcorev1.Service, slices []skiffcorev1.EndpointSlice) []lb.Service {
	bySvc := slicesByService(slices)
	var out []lb.Service
	for i := range services {
		svc := &services[i]
		vip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || svc.Spec.Type == corev1.ServiceTypeExternalName || refused(svc) {
			continue // no ClusterIP yet, headless, a name only, or an address it was refused
		}
		for _, p := range svc.Spec.Ports {
			proto, ok := protocol(p.Protocol)
			if !ok {
				continue
			}
			out = append(out, lb.Service{
				VIP: vip, Port: uint16(p.Port), Proto: proto,
				Backends: backends(bySvc[svc.Namespace+"/"+svc.Name], p),
				Affinity: affinity(svc),
			})
		}
	}
	return out
}

// NodePorts computes the node ports from the same Services and slices:
// each port of a NodePort or LoadBalancer Service, with the same backends
// its cluster IP has.
func NodePorts(services []skiffcorev1.Service, slices []skiffcorev1.EndpointSlice) []nodeport.NodePort {
	bySvc := slicesByService(slices)
	var out []nodeport.NodePort
	for i := range services {
		svc := &services[i]
		if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, p := range svc.Spec.Ports {
			proto, ok := protocol(p.Protocol)
			if !ok || p.NodePort == 0 {
				continue
			}
			out = append(out, nodeport.NodePort{Port: uint16(p.NodePort), Proto: proto, Backends: backends(bySvc[svc.Namespace+"/"+svc.Name], p)})
		}
	}
	return out
}

// slicesByService groups EndpointSlices by their Service, "namespace/name".
func slicesByService(slices []skiffcorev1.EndpointSlice) map[string][]*skiffcorev1.EndpointSlice {
	bySvc := map[string][]*skiffcorev1.EndpointSlice{}
	for i := range slices {
		s := &slices[i]
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			bySvc[s.Namespace+"/"+name] = append(bySvc[s.Namespace+"/"+name], s)
		}
	}
	return bySvc
}

// refused reports whether the allocator refused the Service's requested
// cluster IP (taken by another Service, or out of range): programming it
// would steal the other Service's traffic.
func refused(svc *skiffcorev1.Service) bool {
	for _, c := range svc.Status.Conditions {
		if c.Type == "ClusterIPAllocated" && c.Status == metav1.ConditionFalse {
			return true
		}
	}
	return false
}

// protocol maps a Service port's protocol onto the datapath's.
func protocol(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return lb.TCP, true
	case corev1.ProtocolUDP:
		return lb.UDP, true
	}
	return 0, false // SCTP is not balanced
}

// backends lists the addresses that serve a Service port: the ready
// endpoints, or, when none is ready, the serving ones that terminate.
func backends(slices []*skiffcorev1.EndpointSlice, port corev1.ServicePort) []netip.AddrPort {
	var ready, terminating []netip.AddrPort
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		target, ok := slicePort(s, port.Name)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			addr, err := netip.ParseAddr(e.Addresses[0])
			if err != nil {
				continue
			}
			ap := netip.AddrPortFrom(addr, target)
			switch {
			case isTrue(e.Conditions.Ready, true):
				ready = append(ready, ap)
			case isTrue(e.Conditions.Serving, false) && isTrue(e.Conditions.Terminating, false):
				terminating = append(terminating, ap)
			}
		}
	}
	if len(ready) == 0 {
		ready = terminating
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Compare(ready[j]) < 0 })
	return ready
}

// slicePort finds the slice's port for a Service port, by name as upstream
// matches them.
func slicePort(s *skiffcorev1.EndpointSlice, name string) (uint16, bool) {
	for _, p := range s.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn == name && p.Port != nil {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

// isTrue reads an optional condition, nil meaning unset.
func isTrue(b *bool, unset bool) bool {
	if b == nil {
		return unset
	}
	return *b
}

// affinity is a Service's ClientIP affinity timeout, zero for none.
func affinity(svc *skiffcorev1.Service) time.Duration {
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		return 0
	}
	if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
	}
	return defaultAffinityTimeout
}
