package localpath

import (
	"context"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestNewVolume(t *testing.T) {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data-web-0", UID: "u1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteOncePod},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("3Gi")}},
		},
	}
	class := DefaultClass()
	class.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimRetain)

	pv := newVolume(claim, class, "n1")

	if pv.Name != "pvc-u1" {
		t.Errorf("name %s, want pvc-u1: derived from the claim's UID", pv.Name)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("3Gi")) != 0 {
		t.Errorf("capacity %s, want the claim's request 3Gi", got.String())
	}
	if !reflect.DeepEqual(pv.Spec.AccessModes, claim.Spec.AccessModes) {
		t.Errorf("access modes %v, want the claim's %v", pv.Spec.AccessModes, claim.Spec.AccessModes)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != "ns" || ref.Name != "data-web-0" || ref.UID != "u1" {
		t.Errorf("claimRef %+v, want ns/data-web-0 uid u1", ref)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain || pv.Spec.StorageClassName != ClassName {
		t.Errorf("reclaim %s class %s, want the class's Retain and %s", pv.Spec.PersistentVolumeReclaimPolicy, pv.Spec.StorageClassName, ClassName)
	}
	if pv.Spec.Local == nil || pv.Spec.Local.Path != NodeRoot+"/ns/data-web-0" {
		t.Errorf("source %+v, want local %s/ns/data-web-0", pv.Spec.PersistentVolumeSource, NodeRoot)
	}
	if got := affinityNodes(pv); !reflect.DeepEqual(got, []string{"n1"}) {
		t.Errorf("node affinity to %v, want [n1]", got)
	}
	if pv.Annotations[annProvisionedBy] != Provisioner {
		t.Errorf("annotations %v, want provisioned-by %s", pv.Annotations, Provisioner)
	}
}

// affinityNodes returns the hostnames a volume's required node affinity
// allows.
func affinityNodes(pv *corev1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var nodes []string
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn {
				nodes = append(nodes, e.Values...)
			}
		}
	}
	return nodes
}

func TestConsumerNodeAndInUse(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := func(name, node string, age time.Duration, phase corev1.PodPhase, deleting bool) skiffcorev1.Pod {
		p := skiffcorev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))},
			Spec:       corev1.PodSpec{NodeName: node},
			Status:     corev1.PodStatus{Phase: phase},
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: t0}
		}
		return p
	}
	cases := []struct {
		name      string
		pods      []skiffcorev1.Pod
		wantNode  string
		wantInUse bool
	}{
		{"no pods", nil, "", false},
		{"a pending pod not yet scheduled", []skiffcorev1.Pod{pod("a", "", time.Hour, corev1.PodPending, false)}, "", true},
		{"a bound pod", []skiffcorev1.Pod{pod("a", "n1", time.Hour, corev1.PodPending, false)}, "n1", true},
		{"the oldest bound pod decides", []skiffcorev1.Pod{
			pod("young", "n2", time.Minute, corev1.PodRunning, false),
			pod("old", "n1", time.Hour, corev1.PodRunning, false),
		}, "n1", true},
		{"same age: the name decides", []skiffcorev1.Pod{
			pod("b", "n2", time.Hour, corev1.PodRunning, false),
			pod("a", "n1", time.Hour, corev1.PodRunning, false),
		}, "n1", true},
		{"a finished pod neither consumes nor holds", []skiffcorev1.Pod{pod("a", "n1", time.Hour, corev1.PodSucceeded, false)}, "", false},
		{"a terminating pod does not select a node but still holds the claim", []skiffcorev1.Pod{pod("a", "n1", time.Hour, corev1.PodRunning, true)}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := consumerNode(tc.pods); got != tc.wantNode {
				t.Errorf("consumerNode = %q, want %q", got, tc.wantNode)
			}
			if got := inUse(tc.pods); got != tc.wantInUse {
				t.Errorf("inUse = %v, want %v", got, tc.wantInUse)
			}
		})
	}
}

func TestClaimNames(t *testing.T) {
	pod := &skiffcorev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-0"}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "logs", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "logs-0"}}},
	}}}
	if got, want := claimNames(pod), []string{"data-0", "logs-0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("claimNames = %v, want %v", got, want)
	}
}

func TestClaimVolumes(t *testing.T) {
	cases := []struct {
		name       string
		volumeName string
		want       []string
	}{
		{"unbound: the volume it would get", "", []string{"pvc-u1"}},
		{"bound to its own volume", "pvc-u1", []string{"pvc-u1"}},
		{"bound to another volume: both", "static", []string{"pvc-u1", "static"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: tc.volumeName}}
			var want []reconcile.Request
			for _, n := range tc.want {
				want = append(want, reconcile.Request{NamespacedName: types.NamespacedName{Name: n}})
			}
			if got := claimVolumes(context.Background(), claim); !reflect.DeepEqual(got, want) {
				t.Errorf("claimVolumes = %v, want %v", got, want)
			}
		})
	}
}
