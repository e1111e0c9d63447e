package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The finalizers through which the apiserver hands a deletion to the garbage
// collector: it adds one of them, with the deletionTimestamp, when a client
// deletes an object with propagationPolicy Foreground or Orphan.
const (
	foregroundFinalizer = metav1.FinalizerDeleteDependents // "foregroundDeletion"
	orphanFinalizer     = metav1.FinalizerOrphanDependents // "orphan"
)

// ownerState is what the garbage collector observed of one ownerReference's
// target.
type ownerState int

const (
	// ownerSolid: the owner exists with the referenced UID and is not being
	// deleted in foreground. It keeps its dependents alive.
	ownerSolid ownerState = iota
	// ownerDangling: the owner is verifiably gone, absent from a live read
	// or present with another UID (a new object with the same name).
	ownerDangling
	// ownerWaiting: the owner exists but is being deleted in foreground and
	// waits for its dependents to go first.
	ownerWaiting
	// ownerUnresolvable: the garbage collector cannot tell, because the
	// kind is not served or the reference is invalid (a namespaced owner of
	// a cluster-scoped object). Upstream never deletes on a guess, and
	// neither does skiff.
	ownerUnresolvable
)

func (s ownerState) String() string {
	switch s {
	case ownerSolid:
		return "solid"
	case ownerDangling:
		return "dangling"
	case ownerWaiting:
		return "waiting for dependents"
	case ownerUnresolvable:
		return "unresolvable"
	}
	return "unknown"
}

// observedOwner is one ownerReference with the state of its target.
type observedOwner struct {
	Ref   metav1.OwnerReference
	State ownerState
}

// dependentFacts are what the decision needs to know of a dependent besides
// its owners: its own finalizers and dependents, which choose how it is
// deleted.
type dependentFacts struct {
	Finalizers []string
	// HasDependents: other objects name this one as their owner.
	HasDependents bool
	// DependentDeletingDependents: one of those is itself being deleted in
	// foreground, which with this object's own foreground deletion could
	// close a cycle of owners waiting for each other.
	DependentDeletingDependents bool
}

// verdict is what to do with a dependent.
type verdict struct {
	// RemoveRefs are the UIDs of ownerReferences to drop, because their
	// owners are gone or waiting while another owner keeps the object.
	RemoveRefs []types.UID
	// UnblockRefs asks to set blockOwnerDeletion=false on every reference
	// before the deletion, so that a cycle of foreground deletions cannot
	// wait for itself.
	UnblockRefs bool
	// Delete the object, with Policy as its propagationPolicy.
	Delete bool
	Policy metav1.DeletionPropagation
	// Reason says why, for the log.
	Reason string
}

// decideDependent is the garbage collector's rule for one object that has
// owners, as upstream's: an object lives while one owner is solid; once none
// is, it is deleted, in foreground when an owner waits for it and it has
// dependents of its own (so that the owner waits for the whole subtree).
func decideDependent(owners []observedOwner, facts dependentFacts) verdict {
	if len(owners) == 0 {
		return verdict{Reason: "no owners"}
	}
	var solid, waiting bool
	var gone []types.UID
	for _, o := range owners {
		switch o.State {
		case ownerUnresolvable:
			return verdict{Reason: "an owner cannot be resolved; never delete on a guess"}
		case ownerSolid:
			solid = true
		case ownerWaiting:
			waiting = true
			gone = append(gone, o.Ref.UID)
		case ownerDangling:
			gone = append(gone, o.Ref.UID)
		}
	}
	switch {
	case solid && len(gone) == 0:
		return verdict{Reason: "every owner exists"}
	case solid:
		return verdict{RemoveRefs: gone, Reason: "another owner exists: drop the references to owners that are gone or being deleted"}
	case waiting && facts.HasDependents:
		return verdict{
			Delete: true, Policy: metav1.DeletePropagationForeground,
			UnblockRefs: facts.DependentDeletingDependents,
			Reason:      "an owner is deleted in foreground and this object has dependents: delete it in foreground too",
		}
	default:
		return verdict{Delete: true, Policy: ownPolicy(facts.Finalizers), Reason: "every owner is gone"}
	}
}

// ownPolicy is how to delete an object that lost its owners: as its own
// finalizers already ask, if they do, else in background.
func ownPolicy(finalizers []string) metav1.DeletionPropagation {
	switch {
	case slices.Contains(finalizers, orphanFinalizer):
		return metav1.DeletePropagationOrphan
	case slices.Contains(finalizers, foregroundFinalizer):
		return metav1.DeletePropagationForeground
	default:
		return metav1.DeletePropagationBackground
	}
}

// ownerStep is what to do for an object that is being deleted.
type ownerStep int

const (
	// stepNone: the deletion is not the garbage collector's business, or
	// it must wait.
	stepNone ownerStep = iota
	// stepOrphan: drop every dependent's reference to this object, then
	// remove the orphan finalizer.
	stepOrphan
	// stepReleaseForeground: no dependent blocks any more; remove the
	// foregroundDeletion finalizer.
	stepReleaseForeground
	// stepWaitForDependents: blocking dependents remain; their deletions
	// bring the garbage collector back.
	stepWaitForDependents
)

// awaitsCollector tells whether an object being deleted waits for the
// garbage collector: it carries the orphan or foregroundDeletion finalizer.
func awaitsCollector(finalizers []string) bool {
	return slices.Contains(finalizers, orphanFinalizer) || slices.Contains(finalizers, foregroundFinalizer)
}

// decideOwner picks the step for an object being deleted, from its
// finalizers and how many dependents still block it. Orphaning comes first
// when a client asked for both, as upstream.
func decideOwner(finalizers []string, blocking int) ownerStep {
	switch {
	case slices.Contains(finalizers, orphanFinalizer):
		return stepOrphan
	case !slices.Contains(finalizers, foregroundFinalizer):
		return stepNone
	case blocking == 0:
		return stepReleaseForeground
	default:
		return stepWaitForDependents
	}
}

// blocksOwner tells whether a dependent holds the foreground deletion of the
// owner with UID owner: it references it with blockOwnerDeletion=true. A
// dependent that is itself terminating still blocks, as upstream.
func blocksOwner(refs []metav1.OwnerReference, owner types.UID) bool {
	for _, r := range refs {
		if r.UID == owner && r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
			return true
		}
	}
	return false
}

// withoutRefs returns refs without the references to the given owner UIDs.
func withoutRefs(refs []metav1.OwnerReference, drop []types.UID) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs))
	for _, r := range refs {
		if !slices.Contains(drop, r.UID) {
			out = append(out, r)
		}
	}
	return out
}

// unblocked returns refs with blockOwnerDeletion=false wherever it was true.
func unblocked(refs []metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, len(refs))
	for i, r := range refs {
		r = *r.DeepCopy()
		if r.BlockOwnerDeletion != nil && *r.BlockOwnerDeletion {
			f := false
			r.BlockOwnerDeletion = &f
		}
		out[i] = r
	}
	return out
}

// ownerNamespace is where to look for an owner of a dependent in namespace
// dependentNS: a namespaced owner lives in its dependent's namespace, a
// cluster-scoped owner in none. A cluster-scoped dependent cannot have a
// namespaced owner; ok is false for that invalid reference.
func ownerNamespace(dependentNS string, ownerNamespaced bool) (ns string, ok bool) {
	switch {
	case !ownerNamespaced:
		return "", true
	case dependentNS == "":
		return "", false
	default:
		return dependentNS, true
	}
}
