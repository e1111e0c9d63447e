package garbagecollector

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// orphanDependents carries out an Orphan deletion: every dependent loses its
// references to owner and survives it; then the orphan finalizer goes and
// the apiserver deletes the owner.
func (gc *GarbageCollector) orphanDependents(ctx context.Context, owner *metav1.PartialObjectMetadata, deps []*metav1.PartialObjectMetadata) error {
	for _, d := range deps {
		if err := gc.patchOwnerRefs(ctx, d, []types.UID{owner.UID}); err != nil {
			return fmt.Errorf("orphaning %s %s/%s: %w", d.Kind, d.Namespace, d.Name, err)
		}
	}
	log.FromContext(ctx).Info("orphaned the dependents: releasing the owner", "dependents", len(deps))
	return gc.removeFinalizer(ctx, owner, orphanFinalizer)
}

// patchOwnerRefs drops obj's references to the owners with the given UIDs.
// Dropping a reference to an owner that is gone is right whatever else
// changed, so a conflict only means reading obj again.
func (gc *GarbageCollector) patchOwnerRefs(ctx context.Context, obj *metav1.PartialObjectMetadata, drop []types.UID) error {
	return gc.patchMeta(ctx, obj, func(m *metav1.PartialObjectMetadata) bool {
		refs := withoutRefs(m.OwnerReferences, drop)
		if len(refs) == len(m.OwnerReferences) {
			return false
		}
		m.OwnerReferences = refs
		return true
	})
}

// unblockOwnerRefs sets blockOwnerDeletion=false on every reference of obj.
func (gc *GarbageCollector) unblockOwnerRefs(ctx context.Context, obj *metav1.PartialObjectMetadata) error {
	return gc.patchMeta(ctx, obj, func(m *metav1.PartialObjectMetadata) bool {
		refs := unblocked(m.OwnerReferences)
		changed := !slices.EqualFunc(refs, m.OwnerReferences, sameRef)
		m.OwnerReferences = refs
		return changed
	})
}

// patchMeta applies mutate to obj's metadata and writes it with a merge
// patch guarded by resourceVersion. On a conflict it reads the object live
// and applies mutate again; mutate returns false when there is nothing to
// change. An object that is gone, or replaced by another of its name, needs
// nothing.
func (gc *GarbageCollector) patchMeta(ctx context.Context, obj *metav1.PartialObjectMetadata, mutate func(*metav1.PartialObjectMetadata) bool) error {
	gvk, uid := obj.GroupVersionKind(), obj.UID
	current := obj
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if current == nil {
			current = newMeta(gvk)
			if err := gc.live.Get(ctx, client.ObjectKeyFromObject(obj), current); err != nil {
				return err
			}
			current.SetGroupVersionKind(gvk)
		}
		if current.UID != uid {
			return nil
		}
		next := current.DeepCopy()
		if !mutate(next) {
			return nil
		}
		err := gc.writer.Patch(ctx, next, client.MergeFromWithOptions(current, client.MergeFromWithOptimisticLock{}))
		current = nil
		return err
	})
	return client.IgnoreNotFound(err)
}
