package garbagecollector

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// processDeletion carries out the orphan or foreground step of an object
// being deleted. An object deleted in background, or held only by another
// finalizer (a bound pod's termination finalizer), needs nothing from the
// collector: its dependents are collected once it is gone.
func (gc *GarbageCollector) processDeletion(ctx context.Context, owner *metav1.PartialObjectMetadata) error {
	if !awaitsCollector(owner.Finalizers) {
		return nil
	}
	deps, err := dependents(ctx, gc.cache, owner.UID)
	if err != nil {
		return err
	}
	blocking := 0
	for _, d := range deps {
		if blocksOwner(d.OwnerReferences, owner.UID) {
			blocking++
		}
	}
	switch decideOwner(owner.Finalizers, blocking) {
	case stepOrphan:
		return gc.orphanDependents(ctx, owner, deps)
	case stepReleaseForeground:
		log.FromContext(ctx).Info("no dependent blocks the foreground deletion any more: releasing the owner")
		return gc.removeFinalizer(ctx, owner, foregroundFinalizer)
	case stepWaitForDependents:
		log.FromContext(ctx).V(1).Info("waiting for blocking dependents", "blocking", blocking)
	}
	return nil
}

// removeFinalizer lets the apiserver finish an owner's deletion.
func (gc *GarbageCollector) removeFinalizer(ctx context.Context, owner *metav1.PartialObjectMetadata, finalizer string) error {
	return gc.patchMeta(ctx, owner, func(m *metav1.PartialObjectMetadata) bool {
		if !slices.Contains(m.Finalizers, finalizer) {
			return false
		}
		m.Finalizers = slices.DeleteFunc(slices.Clone(m.Finalizers), func(f string) bool { return f == finalizer })
		return true
	})
}
