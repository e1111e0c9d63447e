package garbagecollector

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func owner(uid string, s ownerState) observedOwner {
	return observedOwner{Ref: metav1.OwnerReference{UID: types.UID(uid), Name: uid}, State: s}
}

func TestDecideDependent(t *testing.T) {
	cases := []struct {
		name   string
		owners []observedOwner
		facts  dependentFacts
		want   verdict
	}{
		{
			name: "no owners: not the collector's business",
			want: verdict{},
		},
		{
			name:   "the one owner exists: keep",
			owners: []observedOwner{owner("a", ownerSolid)},
			want:   verdict{},
		},
		{
			name:   "the one owner is gone: delete in background",
			owners: []observedOwner{owner("a", ownerDangling)},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "every owner is gone: delete",
			owners: []observedOwner{owner("a", ownerDangling), owner("b", ownerDangling)},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "one of two owners is gone: drop only its reference",
			owners: []observedOwner{owner("a", ownerDangling), owner("b", ownerSolid)},
			want:   verdict{RemoveRefs: []types.UID{"a"}},
		},
		{
			name:   "an owner waits in foreground but another exists: drop the waiting reference, survive",
			owners: []observedOwner{owner("a", ownerWaiting), owner("b", ownerSolid), owner("c", ownerDangling)},
			want:   verdict{RemoveRefs: []types.UID{"a", "c"}},
		},
		{
			name:   "the owner waits in foreground, no dependents of its own: delete in background",
			owners: []observedOwner{owner("a", ownerWaiting)},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "the owner waits in foreground and this has dependents: delete in foreground",
			owners: []observedOwner{owner("a", ownerWaiting)},
			facts:  dependentFacts{HasDependents: true},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:   "foreground through a dependent already deleting its own: unblock first against a cycle",
			owners: []observedOwner{owner("a", ownerWaiting), owner("b", ownerDangling)},
			facts:  dependentFacts{HasDependents: true, DependentDeletingDependents: true},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground, UnblockRefs: true},
		},
		{
			name:   "owners gone, dependents but nobody waiting: background",
			owners: []observedOwner{owner("a", ownerDangling)},
			facts:  dependentFacts{HasDependents: true},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationBackground},
		},
		{
			name:   "owners gone and the object asks to orphan its own dependents",
			owners: []observedOwner{owner("a", ownerDangling)},
			facts:  dependentFacts{Finalizers: []string{"x", orphanFinalizer}},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationOrphan},
		},
		{
			name:   "owners gone and the object carries the foreground finalizer",
			owners: []observedOwner{owner("a", ownerDangling)},
			facts:  dependentFacts{Finalizers: []string{foregroundFinalizer}},
			want:   verdict{Delete: true, Policy: metav1.DeletePropagationForeground},
		},
		{
			name:   "an unresolvable owner: never delete or patch on a guess",
			owners: []observedOwner{owner("a", ownerDangling), owner("b", ownerUnresolvable)},
			want:   verdict{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideDependent(tc.owners, tc.facts)
			got.Reason = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decideDependent = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecideOwner(t *testing.T) {
	cases := []struct {
		name       string
		finalizers []string
		blocking   int
		want       ownerStep
	}{
		{"deleted in background, held by another finalizer", []string{"core.skiff.dev/termination"}, 0, stepNone},
		{"orphan", []string{orphanFinalizer}, 3, stepOrphan},
		{"orphan before foreground when both are asked", []string{foregroundFinalizer, orphanFinalizer}, 3, stepOrphan},
		{"foreground with blocking dependents: wait", []string{foregroundFinalizer}, 2, stepWaitForDependents},
		{"foreground, nothing blocks: release", []string{foregroundFinalizer}, 0, stepReleaseForeground},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideOwner(tc.finalizers, tc.blocking); got != tc.want {
				t.Fatalf("decideOwner = %d, want %d", got, tc.want)
			}
			if got, want := awaitsCollector(tc.finalizers), tc.want != stepNone; got != want {
				t.Fatalf("awaitsCollector = %v, want %v", got, want)
			}
		})
	}
}

func TestBlocksOwner(t *testing.T) {
	refs := []metav1.OwnerReference{
		{UID: "blocking", BlockOwnerDeletion: ptr.To(true)},
		{UID: "explicitly-not", BlockOwnerDeletion: ptr.To(false)},
		{UID: "unset"},
	}
	cases := map[types.UID]bool{"blocking": true, "explicitly-not": false, "unset": false, "other": false}
	for uid, want := range cases {
		if got := blocksOwner(refs, uid); got != want {
			t.Errorf("blocksOwner(%s) = %v, want %v", uid, got, want)
		}
	}
}

func TestRefEdits(t *testing.T) {
	refs := []metav1.OwnerReference{
		{UID: "a", BlockOwnerDeletion: ptr.To(true)},
		{UID: "b"},
		{UID: "c", BlockOwnerDeletion: ptr.To(false)},
	}
	if got := withoutRefs(refs, []types.UID{"a", "c"}); len(got) != 1 || got[0].UID != "b" {
		t.Errorf("withoutRefs = %+v, want only b", got)
	}
	if got := withoutRefs(refs, nil); len(got) != 3 {
		t.Errorf("withoutRefs(nothing) = %+v, want all three", got)
	}
	got := unblocked(refs)
	for _, r := range got {
		if blocksOwner([]metav1.OwnerReference{r}, r.UID) {
			t.Errorf("unblocked left %s blocking", r.UID)
		}
	}
	if !*refs[0].BlockOwnerDeletion {
		t.Errorf("unblocked modified its input")
	}
}

func TestOwnerNamespace(t *testing.T) {
	cases := []struct {
		name            string
		dependentNS     string
		ownerNamespaced bool
		wantNS          string
		wantOK          bool
	}{
		{"namespaced owner of a namespaced dependent: same namespace", "team", true, "team", true},
		{"cluster-scoped owner of a namespaced dependent", "team", false, "", true},
		{"cluster-scoped owner of a cluster-scoped dependent", "", false, "", true},
		{"namespaced owner of a cluster-scoped dependent: invalid", "", true, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, ok := ownerNamespace(tc.dependentNS, tc.ownerNamespaced)
			if ns != tc.wantNS || ok != tc.wantOK {
				t.Fatalf("ownerNamespace = %q, %v; want %q, %v", ns, ok, tc.wantNS, tc.wantOK)
			}
		})
	}
}

func TestOwnerKeys(t *testing.T) {
	pod := newMeta(watchedKinds[0].GVK)
	pod.Namespace = "team"
	pod.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "apps.skiff.dev/v1", Kind: "ReplicaSet", Name: "rs", UID: "1"},
		{APIVersion: "core.skiff.dev/v1", Kind: "Node", Name: "n1", UID: "2"},
		{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "upstream-rs", UID: "3"},
		{APIVersion: "not/a/version", Kind: "X", Name: "x", UID: "4"},
	}
	got := ownerKeys(pod)
	want := []objectKey{
		{GVK: watchedKinds[4].GVK, Namespace: "team", Name: "rs"},
		{GVK: watchedKinds[1].GVK, Name: "n1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ownerKeys = %v, want %v", got, want)
	}
	if uids := ownerUIDs(pod); !reflect.DeepEqual(uids, []string{"1", "2", "3", "4"}) {
		t.Fatalf("ownerUIDs = %v", uids)
	}

	node := newMeta(watchedKinds[1].GVK)
	node.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps.skiff.dev/v1", Kind: "Deployment", Name: "d", UID: "5"}}
	if got := ownerKeys(node); len(got) != 0 {
		t.Fatalf("a cluster-scoped object's namespaced owner must be ignored, got %v", got)
	}
}
