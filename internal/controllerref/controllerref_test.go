package controllerref

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestDecide(t *testing.T) {
	now := metav1.Now()
	owner := func(deleting bool) *metav1.ObjectMeta {
		o := &metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "owner-uid"}
		if deleting {
			o.DeletionTimestamp = &now
		}
		return o
	}
	ref := func(uid types.UID, controller bool) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "apps.skiff.dev/v1", Kind: "ReplicaSet", Name: "x", UID: uid, Controller: ptr.To(controller)}
	}
	obj := func(ns string, lbls map[string]string, deleting bool, refs ...metav1.OwnerReference) *metav1.ObjectMeta {
		o := &metav1.ObjectMeta{Name: "pod", Namespace: ns, Labels: lbls, OwnerReferences: refs}
		if deleting {
			o.DeletionTimestamp = &now
		}
		return o
	}
	match := map[string]string{"app": "web"}
	other := map[string]string{"app": "db"}
	selector := labels.SelectorFromSet(match)

	cases := []struct {
		name     string
		deleting bool // the owner is being deleted
		obj      *metav1.ObjectMeta
		want     Decision
	}{
		{"orphan that matches is adopted", false, obj("ns", match, false), Adopt},
		{"orphan that does not match is ignored", false, obj("ns", other, false), Ignore},
		{"orphan with a non-controller ref to us is still an orphan", false, obj("ns", match, false, ref("owner-uid", false)), Adopt},
		{"orphan being deleted is not adopted", false, obj("ns", match, true), Ignore},
		{"orphan in another namespace is not adopted", false, obj("other", match, false), Ignore},
		{"an owner being deleted adopts nothing", true, obj("ns", match, false), Ignore},
		{"ours and matching is kept", false, obj("ns", match, false, ref("owner-uid", true)), Keep},
		{"ours and being deleted is still kept", false, obj("ns", match, true, ref("owner-uid", true)), Keep},
		{"ours and no longer matching is released", false, obj("ns", other, false, ref("owner-uid", true)), Release},
		{"an owner being deleted releases nothing", true, obj("ns", other, false, ref("owner-uid", true)), Ignore},
		{"ours and matching while the owner is deleted is kept", true, obj("ns", match, false, ref("owner-uid", true)), Keep},
		{"another controller's matching object is ignored", false, obj("ns", match, false, ref("someone-else", true)), Ignore},
		{"another controller's non-matching object is ignored", false, obj("ns", other, false, ref("someone-else", true)), Ignore},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(owner(tc.deleting), selector, tc.obj); got != tc.want {
				t.Fatalf("Decide = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{Ignore: "Ignore", Keep: "Keep", Adopt: "Adopt", Release: "Release"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", d, d.String(), want)
		}
	}
}

func TestWithControllerRef(t *testing.T) {
	ours := metav1.OwnerReference{Kind: "ReplicaSet", Name: "web", UID: "ours", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	other := metav1.OwnerReference{Kind: "ConfigMap", Name: "cfg", UID: "other"}
	cases := []struct {
		name string
		refs []metav1.OwnerReference
		want []metav1.OwnerReference
	}{
		{"no references", nil, []metav1.OwnerReference{ours}},
		{"another owner is kept", []metav1.OwnerReference{other}, []metav1.OwnerReference{other, ours}},
		{"a non-controller reference to us is replaced", []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web", UID: "ours"}, other}, []metav1.OwnerReference{other, ours}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := withControllerRef(tc.refs, ours); !equality.Semantic.DeepEqual(got, tc.want) {
				t.Fatalf("withControllerRef = %+v, want %+v", got, tc.want)
			}
		})
	}
}
