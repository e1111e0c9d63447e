package scheduler

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestVolumeBindingFilter: a pod whose claim is bound to a volume pinned to
// node n1 fits only n1; an unbound claim constrains nothing.
func TestVolumeBindingFilter(t *testing.T) {
	ctx := context.Background()
	pinned := &corev1.PersistentVolume{}
	pinned.Name = "pvc-volumebinding-1"
	pinned.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	pinned.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	pinned.Spec.HostPath = &corev1.HostPathVolumeSource{Path: "/tmp/skiff-volumebinding"}
	pinned.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
	}}}}
	bound := &corev1.PersistentVolumeClaim{}
	bound.Namespace, bound.Name, bound.Spec.VolumeName = "default", "vb-data-0", pinned.Name
	unbound := &corev1.PersistentVolumeClaim{}
	unbound.Namespace, unbound.Name = "default", "vb-data-1"
	for _, c := range []*corev1.PersistentVolumeClaim{bound, unbound} {
		c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	}
	for _, o := range []client.Object{pinned, bound, unbound} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	reader := env.Client

	withClaim := func(claim string) *PodInfo {
		p := pod("p", "", "")
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
		pi := NewPodInfo(p, 0, false)
		pi.volumeNodeAffinity = volumeNodeAffinity(ctx, reader, p)
		return pi
	}
	labelled := func(name string) *NodeInfo {
		n := node(name, "4", "8Gi", 110, map[string]string{"kubernetes.io/hostname": name})
		return nodeWith(n)
	}
	cases := []struct {
		name   string
		pi     *PodInfo
		node   *NodeInfo
		reason string
	}{
		{"bound volume, its node", withClaim("vb-data-0"), labelled("n1"), ""},
		{"bound volume, another node", withClaim("vb-data-0"), labelled("n2"), volumeNodeAffinityReason},
		{"unbound claim", withClaim("vb-data-1"), labelled("n2"), ""},
		{"missing claim", withClaim("nope"), labelled("n2"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := volumeBinding{}.Filter(&cycleState{pod: tc.pi}, tc.node)
			switch {
			case tc.reason == "" && st != nil:
				t.Errorf("refused: %v", st.Reasons)
			case tc.reason != "" && (st == nil || st.Reasons[0] != tc.reason || !st.Unresolvable):
				t.Errorf("status %+v, want unresolvable %q", st, tc.reason)
			}
		})
	}
}
