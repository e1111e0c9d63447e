package statefulset

import (
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// testOrdinalsStart: spec.ordinals.start names the pods from start; moving
// it creates the new ordinals first, in order, then removes the old ones
// from the highest, as upstream.
func testOrdinalsStart(t *testing.T) {
	ns := namespace(t)
	tl := watchTimeline(t, ns)
	set := newSet(t, ns, "num", 2, func(s *skiffappsv1.StatefulSet) {
		s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3}
	})
	for i, p := range waitReadyFrom(t, ns, "num", 3, 2) {
		if want := strconv.Itoa(3 + i); p.Labels[appsv1.PodIndexLabel] != want || p.Spec.Hostname != p.Name {
			t.Errorf("pod %s: index label %q hostname %q, want %s and its name", p.Name, p.Labels[appsv1.PodIndexLabel], p.Spec.Hostname, want)
		}
	}

	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"ordinals":{"start":5}}}`))
	if err := env.Client.Patch(bg(), set, patch); err != nil {
		t.Fatal(err)
	}
	waitReadyFrom(t, ns, "num", 5, 2)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.Replicas == 2 && s.ReadyReplicas == 2 && s.ObservedGeneration == set.Generation
	})

	at := func(name string, what func(step) bool) int {
		return tl.order(func(s step) bool { return s.name == name && what(s) })
	}
	created := func(step) bool { return true }
	gone := func(s step) bool { return s.gone }
	c5, c6, g4, g3 := at("num-5", created), at("num-6", created), at("num-4", gone), at("num-3", gone)
	if c5 < 0 || c6 < 0 || g4 < 0 || g3 < 0 || c5 > c6 || c6 > g4 || g4 > g3 {
		t.Errorf("events: num-5 created at %d, num-6 at %d, num-4 deleted at %d, num-3 at %d; want them in that order", c5, c6, g4, g3)
	}
}
