package localpath

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestClassOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	class := func(name, provisioner string, isDefault bool, age time.Duration) storagev1.StorageClass {
		c := storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(-age))},
			Provisioner: provisioner,
		}
		if isDefault {
			c.Annotations = map[string]string{isDefaultClassAnnotation: "true"}
		}
		return c
	}
	ours := class(ClassName, Provisioner, true, time.Hour)
	oursNotDefault := class(ClassName, Provisioner, false, time.Hour)
	other := class("fast", "example.com/fast", false, time.Hour)
	newerOtherDefault := class("fast", "example.com/fast", true, time.Minute)
	olderOtherDefault := class("fast", "example.com/fast", true, 2*time.Hour)

	cases := []struct {
		name      string
		className *string
		classes   []storagev1.StorageClass
		want      string // "" for not ours
	}{
		{"names local-path", ptr.To(ClassName), []storagev1.StorageClass{ours, other}, ClassName},
		{"names local-path, which is not the default", ptr.To(ClassName), []storagev1.StorageClass{oursNotDefault}, ClassName},
		{"names another provisioner's class", ptr.To("fast"), []storagev1.StorageClass{ours, other}, ""},
		{"names a class that does not exist (yet)", ptr.To("slow"), []storagev1.StorageClass{ours}, ""},
		{"empty string asks for no class", ptr.To(""), []storagev1.StorageClass{ours}, ""},
		{"no class, local-path is the default", nil, []storagev1.StorageClass{ours, other}, ClassName},
		{"no class, no default", nil, []storagev1.StorageClass{oursNotDefault, other}, ""},
		{"no class, another default is newer: it wins", nil, []storagev1.StorageClass{ours, newerOtherDefault}, ""},
		{"no class, another default is older: local-path wins", nil, []storagev1.StorageClass{olderOtherDefault, ours}, ClassName},
		{"no class, no classes at all", nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claim := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: tc.className}}
			got := classOf(claim, tc.classes)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("classOf = %s, want none: not this provisioner's claim", got.Name)
			case tc.want != "" && (got == nil || got.Name != tc.want):
				t.Fatalf("classOf = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestDefaultClassWaitsForConsumer(t *testing.T) {
	c := DefaultClass()
	if !waitsForConsumer(c) {
		t.Errorf("the default class binds %v, want WaitForFirstConsumer", c.VolumeBindingMode)
	}
	if waitsForConsumer(&storagev1.StorageClass{}) {
		t.Error("a class without a binding mode waits for a consumer, want Immediate as upstream")
	}
	if c.Provisioner != Provisioner || *c.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || c.Annotations[isDefaultClassAnnotation] != "true" {
		t.Errorf("default class %+v: want provisioner %s, reclaim Delete, marked default", c, Provisioner)
	}
}
