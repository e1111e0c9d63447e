package dns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// addServices adds every Service's records, as the specification's section
// 2.3 (ClusterIP), 2.4 (headless) and 2.5 (ExternalName) describe them.
func addServices(z *Zone, snap *Snapshot) {
	slices := slicesByService(snap.EndpointSlices)
	pods := make(map[types.NamespacedName]*skiffcorev1.Pod, len(snap.Pods))
	for i := range snap.Pods {
		p := &snap.Pods[i]
		pods[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p
	}
	for i := range snap.Services {
		svc := &snap.Services[i]
		name := strings.ToLower(svc.Name + "." + svc.Namespace + ".svc." + z.domain)
		switch {
		case svc.Spec.Type == corev1.ServiceTypeExternalName:
			z.add(&dns.CNAME{Hdr: header(name, dns.TypeCNAME), Target: canonical(svc.Spec.ExternalName)})
		case svc.Spec.ClusterIP == corev1.ClusterIPNone:
			addHeadless(z, name, svc, slices[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}], pods)
		default:
			addClusterIP(z, name, svc)
		}
	}
}

// addClusterIP answers a Service with a virtual address: A or AAAA with its
// cluster IPs, SRV for each named port pointing at the Service's own name,
// and PTR from each cluster IP back to it. A Service whose address is not
// allocated yet exists with no address records.
func addClusterIP(z *Zone, name string, svc *skiffcorev1.Service) {
	z.exists(name)
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		addAddress(z, name, ip, true)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name != "" {
			z.add(srv(p.Name, p.Protocol, name, p.Port, name))
		}
	}
}

// addHeadless answers a Service without a virtual address with its ready
// endpoints: the Service's name holds one A or AAAA per address; each
// endpoint has a name of its own under the Service's (its hostname, or its
// address with dashes, as CoreDNS names it), with PTR back to that name; and
// each named port has one SRV per endpoint pointing at the endpoint's name.
func addHeadless(z *Zone, name string, svc *skiffcorev1.Service, slices []*skiffcorev1.EndpointSlice, pods map[types.NamespacedName]*skiffcorev1.Pod) {
	z.exists(name)
	for _, slice := range slices {
		if slice.AddressType != discoveryv1.AddressTypeIPv4 && slice.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		for i := range slice.Endpoints {
			ep := &slice.Endpoints[i]
			if !svc.Spec.PublishNotReadyAddresses && !isReady(ep) {
				continue
			}
			hostname := endpointHostname(ep, svc, pods)
			for _, ip := range ep.Addresses {
				epName := hostname
				if epName == "" {
					epName = dashed(ip)
				}
				epName = strings.ToLower(epName) + "." + name
				addAddress(z, name, ip, false)
				addAddress(z, epName, ip, true)
				addEndpointPorts(z, name, epName, slice.Ports)
			}
		}
	}
}

// addEndpointPorts adds, for each named port of an EndpointSlice, the SRV
// record of the headless Service at name pointing at one endpoint's name.
func addEndpointPorts(z *Zone, name, epName string, ports []discoveryv1.EndpointPort) {
	for _, p := range ports {
		if p.Name == nil || *p.Name == "" || p.Port == nil {
			continue
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		z.add(srv(*p.Name, proto, name, *p.Port, epName))
	}
}

// addAddress adds an A or AAAA record for ip at name, and, for a name that
// the address should point back at (a cluster IP's Service, an endpoint's
// own name), the PTR record from ip to name. An address that does not parse
// adds nothing.
func addAddress(z *Zone, name, ip string, pointer bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	if addr.Is4() {
		z.add(&dns.A{Hdr: header(name, dns.TypeA), A: addr.AsSlice()})
	} else {
		z.add(&dns.AAAA{Hdr: header(name, dns.TypeAAAA), AAAA: addr.AsSlice()})
	}
	if reverse, err := dns.ReverseAddr(addr.String()); pointer && err == nil {
		z.add(&dns.PTR{Hdr: header(reverse, dns.TypePTR), Ptr: name})
	}
}

// srv is the SRV record _port._proto.service pointing at target. Every
// target has the same priority and weight: the specification leaves them
// open, and equal weights spread clients evenly.
func srv(port string, proto corev1.Protocol, service string, number int32, target string) *dns.SRV {
	name := "_" + strings.ToLower(port) + "._" + strings.ToLower(string(proto)) + "." + service
	return &dns.SRV{Hdr: header(name, dns.TypeSRV), Priority: 0, Weight: 100, Port: uint16(number), Target: target}
}

// slicesByService groups EndpointSlices by the Service their
// kubernetes.io/service-name label names.
func slicesByService(slices []skiffcorev1.EndpointSlice) map[types.NamespacedName][]*skiffcorev1.EndpointSlice {
	out := map[types.NamespacedName][]*skiffcorev1.EndpointSlice{}
	for i := range slices {
		s := &slices[i]
		if svc := s.Labels[skiffcorev1.LabelServiceName]; svc != "" {
			key := types.NamespacedName{Namespace: s.Namespace, Name: svc}
			out[key] = append(out[key], s)
		}
	}
	return out
}

// isReady reports whether an endpoint may receive traffic. Upstream says a
// missing ready condition means ready.
func isReady(ep *discoveryv1.Endpoint) bool {
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// endpointHostname is the endpoint's own DNS label: the hostname its
// EndpointSlice carries, or else, as upstream's endpoint controllers derive
// it, the hostname of its pod when the pod's subdomain names this Service
// (a StatefulSet's pods, whose subdomain is its serviceName).
func endpointHostname(ep *discoveryv1.Endpoint, svc *skiffcorev1.Service, pods map[types.NamespacedName]*skiffcorev1.Pod) string {
	if ep.Hostname != nil && *ep.Hostname != "" {
		return *ep.Hostname
	}
	ref := ep.TargetRef
	if ref == nil || ref.Kind != "Pod" {
		return ""
	}
	ns := ref.Namespace
	if ns == "" {
		ns = svc.Namespace
	}
	pod := pods[types.NamespacedName{Namespace: ns, Name: ref.Name}]
	if pod == nil || ns != svc.Namespace || pod.Spec.Subdomain != svc.Name {
		return ""
	}
	return pod.Spec.Hostname
}

// dashed names an endpoint without a hostname after its address, with
// dashes for dots and colons, as CoreDNS does: 10.244.0.5 is 10-244-0-5.
func dashed(ip string) string {
	return strings.NewReplacer(".", "-", ":", "-").Replace(ip)
}
