package endpointslice

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// pe is pod name's endpoint serving port "http" on port, or no port at 0.
func pe(name string, port int32) podEndpoint {
	e := podEndpoint{endpoint: discoveryv1.Endpoint{
		Addresses:  []string{"10.0.0.1"},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: name},
	}}
	if port != 0 {
		e.ports = []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}}
	}
	return e
}

func pes(port int32, names ...string) []podEndpoint {
	var out []podEndpoint
	for _, n := range names {
		out = append(out, pe(n, port))
	}
	return out
}

// existingSlice is a slice as the planner would have written it.
func existingSlice(name string, port int32, names ...string) skiffcorev1.EndpointSlice {
	s := withContent(&skiffcorev1.EndpointSlice{}, nil, nil, testLabels)
	s.Name = name
	for _, e := range pes(port, names...) {
		s.Endpoints = append(s.Endpoints, e.endpoint)
		s.Ports = e.ports
	}
	return *s
}

var testLabels = map[string]string{skiffcorev1.LabelServiceName: "web", LabelManagedBy: ManagedBy}

// describe renders a slice as "name:port[pods]" for the table.
func describe(s *skiffcorev1.EndpointSlice) string {
	port := "-"
	if len(s.Ports) > 0 {
		port = fmt.Sprint(*s.Ports[0].Port)
	}
	var names []string
	for _, e := range s.Endpoints {
		names = append(names, e.TargetRef.Name)
	}
	return fmt.Sprintf("%s:%s[%s]", s.Name, port, strings.Join(names, " "))
}

func describeAll(list []*skiffcorev1.EndpointSlice) []string {
	var out []string
	for _, s := range list {
		out = append(out, describe(s))
	}
	return out
}

func TestPlanSlices(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		existing             []skiffcorev1.EndpointSlice
		eps                  []podEndpoint
		create, update, dele []string
	}{
		{
			name:   "new endpoints fill slices of at most max, in pod order",
			eps:    pes(8080, "e", "d", "c", "b", "a"),
			create: []string{":8080[a b]", ":8080[c d]", ":8080[e]"},
		},
		{
			name:     "nothing changed writes nothing",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 8080, "a", "b")},
			eps:      pes(8080, "a", "b"),
		},
		{
			name:     "a gone endpoint leaves and a new one takes the free room",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 8080, "b", "a")},
			eps:      pes(8080, "a", "c"),
			update:   []string{"s1:8080[a c]"},
		},
		{
			name:     "endpoints stay in their slice; a full slice is not touched",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 8080, "a", "z"), existingSlice("s2", 8080, "m")},
			eps:      pes(8080, "a", "z", "m", "b"),
			update:   []string{"s2:8080[m b]"},
		},
		{
			name:   "a named port resolving differently splits the slices",
			eps:    append(pes(8080, "a", "b"), pes(9090, "c")...),
			create: []string{":8080[a b]", ":9090[c]"},
		},
		{
			name:   "pods without the named port form their own group",
			eps:    append(pes(8080, "a"), pes(0, "b")...),
			create: []string{":-[b]", ":8080[a]"},
		},
		{
			name:     "a port group nobody serves any more goes",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 8080, "a"), existingSlice("s2", 9090, "b")},
			eps:      pes(8080, "a", "b"),
			update:   []string{"s1:8080[a b]"},
			dele:     []string{"s2:9090[b]"},
		},
		{
			name:   "no endpoints: one empty placeholder",
			create: []string{":-[]"},
		},
		{
			name:     "endpoints all gone: the first slice becomes the placeholder",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 8080, "a", "b"), existingSlice("s2", 8080, "c")},
			update:   []string{"s1:-[]"},
			dele:     []string{"s2:8080[c]"},
		},
		{
			name:     "the placeholder goes once there are endpoints",
			existing: []skiffcorev1.EndpointSlice{existingSlice("s1", 0)},
			eps:      pes(8080, "a"),
			create:   []string{":8080[a]"},
			dele:     []string{"s1:-[]"},
		},
	} {
		p := planSlices(tc.existing, tc.eps, testLabels, 2)
		check := func(what string, got []*skiffcorev1.EndpointSlice, want []string) {
			if g := describeAll(got); !slices.Equal(g, want) {
				t.Errorf("%s: %s %v, want %v", tc.name, what, g, want)
			}
		}
		check("create", p.create, tc.create)
		check("update", p.update, tc.update)
		check("delete", p.delete, tc.dele)
		for _, s := range append(p.create, p.update...) {
			if s.Labels[LabelManagedBy] != ManagedBy || s.AddressType != discoveryv1.AddressTypeIPv4 || s.Endpoints == nil {
				t.Errorf("%s: slice %s lacks labels, address type or a non-nil endpoint list", tc.name, describe(s))
			}
		}
	}
}

func TestPlanSlicesRelabels(t *testing.T) {
	s := existingSlice("s1", 8080, "a")
	s.ObjectMeta = metav1.ObjectMeta{Name: "s1", Labels: map[string]string{skiffcorev1.LabelServiceName: "web"}}
	p := planSlices([]skiffcorev1.EndpointSlice{s}, pes(8080, "a"), testLabels, 2)
	if len(p.update) != 1 || p.update[0].Labels[LabelManagedBy] != ManagedBy {
		t.Fatalf("a slice missing a label must be updated: %+v", p)
	}
}
