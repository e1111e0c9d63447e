package endpointslice

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// maxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
const maxEndpointsPerSlice = 100

// plan is the writes that turn a Service's slices into the desired ones.
type plan struct {
	// create are new slices; the controller names and owns them.
	create []*skiffcorev1.EndpointSlice
	// update are existing slices with new content; unchanged ones are not
	// listed, so that a pass with nothing to do writes nothing.
	update []*skiffcorev1.EndpointSlice
	// delete are slices no longer needed.
	delete []*skiffcorev1.EndpointSlice
}

// group is the endpoints that share one port list, which one slice holds.
type group struct {
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

// groupByPorts splits endpoints by their resolved port list: a named
// targetPort that resolves to different numbers in different pods puts
// them in different slices, as upstream. Groups come in a stable order,
// and endpoints in pod-name order within each.
func groupByPorts(eps []podEndpoint) map[string]*group {
	groups := map[string]*group{}
	for _, pe := range eps {
		k := portsKey(pe.ports)
		g, ok := groups[k]
		if !ok {
			g = &group{ports: pe.ports}
			groups[k] = g
		}
		g.endpoints = append(g.endpoints, pe.endpoint)
	}
	for _, g := range groups {
		slices.SortFunc(g.endpoints, func(a, b discoveryv1.Endpoint) int { return cmp.Compare(endpointKey(a), endpointKey(b)) })
	}
	return groups
}

// portsKey identifies a port list, independent of its order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = fmt.Sprintf("%s/%s/%d/%s", deref(p.Name), deref(p.Protocol), deref(p.Port), deref(p.AppProtocol))
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// endpointKey identifies an endpoint across passes: its pod.
func endpointKey(ep discoveryv1.Endpoint) string {
	if ep.TargetRef != nil {
		return ep.TargetRef.Name
	}
	return strings.Join(ep.Addresses, ",")
}

// planSlices computes the writes from the existing slices (all the
// controller's, for one Service) to the desired endpoints, with the churn
// upstream aims for: an endpoint stays in the slice that holds it, new
// endpoints fill the free room of existing slices before a new slice is
// made, and slices left empty go. A Service with no endpoint keeps one
// empty placeholder slice, so that "no endpoints" is visible.
func planSlices(existing []skiffcorev1.EndpointSlice, eps []podEndpoint, labels map[string]string, max int) plan {
	groups := groupByPorts(eps)
	if len(groups) == 0 {
		groups[""] = &group{}
	}
	byKey := map[string][]*skiffcorev1.EndpointSlice{}
	for i := range existing {
		s := &existing[i]
		k := portsKey(s.Ports)
		byKey[k] = append(byKey[k], s)
	}

	// Without endpoints, an existing slice becomes the placeholder rather
	// than being replaced by a new one.
	if len(eps) == 0 && len(byKey[""]) == 0 && len(existing) > 0 {
		var all []*skiffcorev1.EndpointSlice
		for _, k := range slices.Sorted(maps.Keys(byKey)) {
			all = append(all, byKey[k]...)
		}
		byKey = map[string][]*skiffcorev1.EndpointSlice{"": all}
	}

	var p plan
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		if _, ok := groups[k]; !ok {
			p.delete = append(p.delete, byKey[k]...)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		p.add(planGroup(byKey[k], groups[k], labels, max))
	}
	return p
}

func (p *plan) add(q plan) {
	p.create = append(p.create, q.create...)
	p.update = append(p.update, q.update...)
	p.delete = append(p.delete, q.delete...)
}

// planGroup fits one port group's endpoints into its existing slices.
func planGroup(existing []*skiffcorev1.EndpointSlice, g *group, labels map[string]string, max int) plan {
	slices.SortFunc(existing, func(a, b *skiffcorev1.EndpointSlice) int { return cmp.Compare(a.Name, b.Name) })
	want := make(map[string]discoveryv1.Endpoint, len(g.endpoints))
	for _, ep := range g.endpoints {
		want[endpointKey(ep)] = ep
	}

	// 1. Each endpoint stays where it is, with its fresh content.
	kept := make([][]discoveryv1.Endpoint, len(existing))
	placed := map[string]bool{}
	for i, s := range existing {
		kept[i] = []discoveryv1.Endpoint{}
		for _, ep := range s.Endpoints {
			k := endpointKey(ep)
			if fresh, ok := want[k]; ok && !placed[k] && len(kept[i]) < max {
				kept[i] = append(kept[i], fresh)
				placed[k] = true
			}
		}
	}

	// 2. New endpoints fill free room, then new slices.
	var fresh []discoveryv1.Endpoint
	for _, ep := range g.endpoints {
		if !placed[endpointKey(ep)] {
			fresh = append(fresh, ep)
		}
	}
	for i := range kept {
		n := min(max-len(kept[i]), len(fresh))
		kept[i] = append(kept[i], fresh[:n]...)
		fresh = fresh[n:]
	}

	var p plan
	for i, s := range existing {
		// 3. Empty slices go, but one stays as the placeholder of a
		// Service without endpoints.
		if len(kept[i]) == 0 && (len(g.endpoints) > 0 || i > 0) {
			p.delete = append(p.delete, s)
			continue
		}
		if changed := withContent(s, kept[i], g.ports, labels); changed != nil {
			p.update = append(p.update, changed)
		}
	}
	for len(fresh) > 0 || (len(existing) == 0 && len(p.create) == 0 && len(g.endpoints) == 0) {
		n := min(max, len(fresh))
		p.create = append(p.create, withContent(&skiffcorev1.EndpointSlice{}, fresh[:n], g.ports, labels))
		fresh = fresh[n:]
	}
	return p
}

// withContent returns a copy of s holding endpoints, ports and labels, or
// nil if s already does.
func withContent(s *skiffcorev1.EndpointSlice, endpoints []discoveryv1.Endpoint, ports []discoveryv1.EndpointPort, labels map[string]string) *skiffcorev1.EndpointSlice {
	if endpoints == nil {
		endpoints = []discoveryv1.Endpoint{}
	}
	sameLabels := true
	for k, v := range labels {
		if s.Labels[k] != v {
			sameLabels = false
		}
	}
	if s.Name != "" && sameLabels && s.AddressType == discoveryv1.AddressTypeIPv4 &&
		equality.Semantic.DeepEqual(s.Endpoints, endpoints) && equality.Semantic.DeepEqual(s.Ports, ports) {
		return nil
	}
	out := s.DeepCopy()
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, labels)
	out.AddressType = discoveryv1.AddressTypeIPv4
	out.Endpoints = endpoints
	out.Ports = ports
	return out
}
