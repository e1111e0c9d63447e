// Package controllerref is skiff's one helper for controller
// ownerReferences, shared by every workload controller: it decides which
// objects a controller owns (adopting orphans that match its selector and
// releasing its own objects that no longer match, as upstream's
// ControllerRefManager does), builds the controller reference for new
// children, and indexes children by their controller's UID in the cache.
package controllerref

import (
	"context"
	"errors"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"skiff.dev/skiff/internal/index"
)

// Decision is what a controller does with one candidate child.
type Decision int

const (
	// Ignore leaves the object alone: another controller owns it, or it is
	// an orphan this controller must not take.
	Ignore Decision = iota
	// Keep: the object is already ours and still matches the selector.
	Keep
	// Adopt: an orphan that matches the selector; take it.
	Adopt
	// Release: ours, but it no longer matches the selector; let it go.
	Release
)

func (d Decision) String() string {
	switch d {
	case Keep:
		return "Keep"
	case Adopt:
		return "Adopt"
	case Release:
		return "Release"
	default:
		return "Ignore"
	}
}

// Decide is the pure rule behind claiming, as upstream's ClaimObject: an
// object controlled by someone else is never touched; ours is kept while it
// matches and released once it does not; an orphan is adopted when it
// matches, is in the owner's namespace and is not being deleted. An owner
// being deleted neither adopts nor releases, so that the garbage collector
// sees a stable set of dependents.
func Decide(owner metav1.Object, selector labels.Selector, obj metav1.Object) Decision {
	matches := selector.Matches(labels.Set(obj.GetLabels()))
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		switch {
		case ref.UID != owner.GetUID():
			return Ignore
		case matches:
			return Keep
		case owner.GetDeletionTimestamp() != nil:
			return Ignore
		default:
			return Release
		}
	}
	switch {
	case !matches,
		owner.GetDeletionTimestamp() != nil,
		obj.GetDeletionTimestamp() != nil,
		owner.GetNamespace() != "" && owner.GetNamespace() != obj.GetNamespace():
		return Ignore
	}
	return Adopt
}

// NewControllerRef returns the ownerReference that makes owner the
// controller of a child: controller=true and blockOwnerDeletion=true, so
// that a foreground deletion of the owner waits for its children.
func NewControllerRef(owner client.Object, scheme *runtime.Scheme) (*metav1.OwnerReference, error) {
	gvk, err := apiutil.GVKForObject(owner, scheme)
	if err != nil {
		return nil, fmt.Errorf("finding the kind of owner %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
	}
	return metav1.NewControllerRef(owner, gvk), nil
}

// Claimer claims children for one owner. Build one per reconcile: it
// rechecks the owner against the API at most once.
type Claimer struct {
	// Client writes the adoption and release patches; its scheme names the
	// owner's kind.
	Client client.Client
	// APIReader reads the owner without the cache before the first
	// adoption (the manager's GetAPIReader()).
	APIReader client.Reader
	// Owner is the controller claiming the objects.
	Owner client.Object
	// Selector chooses the objects the owner wants.
	Selector labels.Selector
	// Finalizer, when set, is added to an object in the patch that adopts
	// it and removed in the one that releases it, as upstream's Job does
	// with its tracking finalizer: an adopted pod's result must be counted,
	// and a released one must not be held for an owner that no longer
	// counts it.
	Finalizer string

	recheckOnce sync.Once
	recheckErr  error
}

// Claim returns the objects the owner controls after adopting the matching
// orphans and releasing its non-matching children. An object that vanished
// meanwhile is skipped; other failures are returned together, after the
// objects that could be claimed.
func Claim[T client.Object](ctx context.Context, c *Claimer, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		switch Decide(c.Owner, c.Selector, obj) {
		case Keep:
			claimed = append(claimed, obj)
		case Adopt:
			err := c.adopt(ctx, obj)
			switch {
			case err == nil:
				claimed = append(claimed, obj)
			case !apierrors.IsNotFound(err):
				errs = append(errs, err)
			}
		case Release:
			if err := c.release(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return claimed, errors.Join(errs...)
}

// adopt makes the owner the controller of obj. The owner is first re-read
// from the API, as upstream's recheck: a cache can still hold an owner that
// was deleted (or deleted and recreated under the same name), and adopting
// for it would hand the object to the garbage collector.
func (c *Claimer) adopt(ctx context.Context, obj client.Object) error {
	if err := c.recheckOwner(ctx); err != nil {
		return err
	}
	ref, err := NewControllerRef(c.Owner, c.Client.Scheme())
	if err != nil {
		return err
	}
	orig := obj.DeepCopyObject().(client.Object)
	obj.SetOwnerReferences(withControllerRef(obj.GetOwnerReferences(), *ref))
	if c.Finalizer != "" {
		controllerutil.AddFinalizer(obj, c.Finalizer)
	}
	if err := c.patch(ctx, obj, orig); err != nil {
		return fmt.Errorf("adopting %s/%s for %s: %w", obj.GetNamespace(), obj.GetName(), c.Owner.GetName(), err)
	}
	return nil
}

// withControllerRef returns refs with ref added, or in place of a
// reference to the same owner that did not make it the controller (an
// object lists each owner once).
func withControllerRef(refs []metav1.OwnerReference, ref metav1.OwnerReference) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs)+1)
	for _, r := range refs {
		if r.UID != ref.UID {
			out = append(out, r)
		}
	}
	return append(out, ref)
}

// release removes the owner's reference from obj, leaving it an orphan
// that another controller may adopt.
func (c *Claimer) release(ctx context.Context, obj client.Object) error {
	orig := obj.DeepCopyObject().(client.Object)
	var kept []metav1.OwnerReference
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID != c.Owner.GetUID() {
			kept = append(kept, ref)
		}
	}
	obj.SetOwnerReferences(kept)
	if c.Finalizer != "" {
		controllerutil.RemoveFinalizer(obj, c.Finalizer)
	}
	if err := c.patch(ctx, obj, orig); err != nil {
		return fmt.Errorf("releasing %s/%s from %s: %w", obj.GetNamespace(), obj.GetName(), c.Owner.GetName(), err)
	}
	return nil
}

// patch writes obj's ownerReferences as a merge patch that carries the
// resourceVersion it was computed from: a merge patch replaces the whole
// list, so a concurrent change to it must make the write fail (and the
// owner retry) rather than be lost.
func (c *Claimer) patch(ctx context.Context, obj, orig client.Object) error {
	return c.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// recheckOwner confirms, once per Claimer, that the owner still exists
// with the same UID and is not being deleted.
func (c *Claimer) recheckOwner(ctx context.Context) error {
	c.recheckOnce.Do(func() {
		fresh := c.Owner.DeepCopyObject().(client.Object)
		if err := c.APIReader.Get(ctx, client.ObjectKeyFromObject(c.Owner), fresh); err != nil {
			c.recheckErr = fmt.Errorf("rechecking owner %s/%s before adopting: %w", c.Owner.GetNamespace(), c.Owner.GetName(), err)
			return
		}
		switch {
		case fresh.GetUID() != c.Owner.GetUID():
			c.recheckErr = fmt.Errorf("owner %s/%s was recreated (uid %s, expected %s): not adopting for the old one",
				c.Owner.GetNamespace(), c.Owner.GetName(), fresh.GetUID(), c.Owner.GetUID())
		case fresh.GetDeletionTimestamp() != nil:
			c.recheckErr = fmt.Errorf("owner %s/%s is being deleted: not adopting", c.Owner.GetNamespace(), c.Owner.GetName())
		}
	})
	return c.recheckErr
}

// ControllerUIDField is the cache index of objects by the UID of their
// controller, so that a controller lists its children without scanning the
// namespace (the kubebuilder CronJob tutorial's ".metadata.controller").
const ControllerUIDField = ".metadata.controllerUID"

// IndexByControllerUID registers the ControllerUIDField index for obj's
// kind. Every controller that needs it may call it: pods are children of
// ReplicaSets, StatefulSets, DaemonSets and Jobs alike.
func IndexByControllerUID(ctx context.Context, indexer client.FieldIndexer, obj client.Object) error {
	return index.Register(ctx, indexer, obj, ControllerUIDField, func(o client.Object) []string {
		if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
			return []string{string(ref.UID)}
		}
		return nil
	})
}

// ControlledBy selects, in a List from an indexed cache, the objects whose
// controller has this UID.
func ControlledBy(uid types.UID) client.MatchingFields {
	return client.MatchingFields{ControllerUIDField: string(uid)}
}
