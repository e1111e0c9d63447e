// Package garbagecollector deletes objects whose owners are gone, following
// ownerReferences with upstream's background, foreground and orphan
// propagation. skiff runs no kube-controller-manager, so it collects its own.
//
// It watches the metadata of every skiff kind and of the built-in kinds
// skiff's controllers own, indexes them by owner UID, and queues objects by
// identity. An object is reconciled in two roles: as a dependent (are its
// owners gone?) and, while it is being deleted, as an owner (orphan or
// foreground finalizer to process).
package garbagecollector

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// workers is how many objects the garbage collector processes at once.
// Upstream runs 20; skiff's control plane is small and its writes are cheap.
const workers = 4

// GarbageCollector reconciles objects by identity: it deletes those whose
// owners are gone and carries out foreground and orphan deletions.
type GarbageCollector struct {
	// cache holds the metadata of every watched kind, indexed by owner UID.
	cache client.Reader
	// live reads the apiserver directly: absence is only believed from it.
	live client.Reader
	// writer deletes and patches.
	writer client.Writer
	mapper meta.RESTMapper
}

// Setup registers the garbage collector with the manager: a metadata-only
// watch and an owner-UID index for every watched kind, feeding one queue.
func Setup(mgr ctrl.Manager) error {
	gc := &GarbageCollector{
		cache:  mgr.GetCache(),
		live:   mgr.GetAPIReader(),
		writer: mgr.GetClient(),
		mapper: mgr.GetRESTMapper(),
	}
	ctx := context.Background()
	b := builder.TypedControllerManagedBy[objectKey](mgr).
		Named("garbagecollector").
		WithOptions(controller.TypedOptions[objectKey]{MaxConcurrentReconciles: workers})
	for _, k := range watchedKinds {
		if err := mgr.GetFieldIndexer().IndexField(ctx, newMeta(k.GVK), ownerUIDField, ownerUIDs); err != nil {
			return fmt.Errorf("indexing %s by owner UID: %w", k.GVK.Kind, err)
		}
		b = b.WatchesRawSource(source.TypedKind(mgr.GetCache(), newMeta(k.GVK), gc.handler(k.GVK)))
	}
	return b.Complete(gc)
}

type queue = workqueue.TypedRateLimitingInterface[objectKey]

// handler turns the events of one watched kind into queue keys: the object
// itself when its ownership or deletion changed, its dependents when it goes
// or starts a foreground deletion, and its owners when it stops depending on
// them (a foreground owner may be waiting for exactly that).
func (gc *GarbageCollector) handler(gvk schema.GroupVersionKind) handler.TypedEventHandler[*metav1.PartialObjectMetadata, objectKey] {
	self := func(obj *metav1.PartialObjectMetadata) objectKey {
		return objectKey{GVK: gvk, Namespace: obj.Namespace, Name: obj.Name}
	}
	return handler.TypedFuncs[*metav1.PartialObjectMetadata, objectKey]{
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[*metav1.PartialObjectMetadata], q queue) {
			if len(e.Object.OwnerReferences) > 0 || e.Object.DeletionTimestamp != nil {
				q.Add(self(e.Object))
			}
			if deletingInForeground(e.Object) {
				gc.enqueueDependents(ctx, e.Object, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[*metav1.PartialObjectMetadata], q queue) {
			oldObj, newObj := e.ObjectOld, e.ObjectNew
			refsChanged := !slices.EqualFunc(oldObj.OwnerReferences, newObj.OwnerReferences, sameRef)
			if refsChanged || !oldObj.DeletionTimestamp.Equal(newObj.DeletionTimestamp) ||
				!slices.Equal(oldObj.Finalizers, newObj.Finalizers) {
				q.Add(self(newObj))
			}
			if deletingInForeground(newObj) && !deletingInForeground(oldObj) {
				gc.enqueueDependents(ctx, newObj, q)
			}
			if refsChanged {
				for _, k := range ownerKeys(oldObj) {
					q.Add(k)
				}
			}
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[*metav1.PartialObjectMetadata], q queue) {
			gc.enqueueDependents(ctx, e.Object, q)
			for _, k := range ownerKeys(e.Object) {
				q.Add(k)
			}
		},
	}
}

// sameRef compares the parts of an ownerReference the collector acts on.
func sameRef(a, b metav1.OwnerReference) bool {
	return a.UID == b.UID && a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name &&
		ptrBool(a.BlockOwnerDeletion) == ptrBool(b.BlockOwnerDeletion)
}

func ptrBool(b *bool) bool { return b != nil && *b }

// deletingInForeground tells whether obj waits for its dependents.
func deletingInForeground(obj *metav1.PartialObjectMetadata) bool {
	return obj.DeletionTimestamp != nil && slices.Contains(obj.Finalizers, foregroundFinalizer)
}

// enqueueDependents queues every object that references owner.
func (gc *GarbageCollector) enqueueDependents(ctx context.Context, owner *metav1.PartialObjectMetadata, q queue) {
	deps, err := dependents(ctx, gc.cache, owner.UID)
	if err != nil {
		log.FromContext(ctx).Error(err, "finding dependents", "owner", owner.Name, "uid", owner.UID)
		return
	}
	for _, d := range deps {
		q.Add(keyOf(d))
	}
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods;nodes;services;endpointslices,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets;deployments;statefulsets;daemonsets,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs;cronjobs,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims;configmaps;secrets,verbs=get;list;watch;patch;update;delete

// Reconcile processes one object: as an owner while it is being deleted,
// else as a dependent whose owners may be gone.
func (gc *GarbageCollector) Reconcile(ctx context.Context, key objectKey) (reconcile.Result, error) {
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("object", key.String()))
	obj := newMeta(key.GVK)
	if err := gc.cache.Get(ctx, key.namespacedName(), obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	obj.SetGroupVersionKind(key.GVK)
	if obj.DeletionTimestamp != nil {
		return reconcile.Result{}, gc.processDeletion(ctx, obj)
	}
	return reconcile.Result{}, gc.attemptToDelete(ctx, obj)
}

// attemptToDelete looks at a dependent's owners and deletes it, or drops
// references, when they are gone. The plan made from the cache is made again
// from a live read of the dependent before any write, so that a stale cache
// never deletes an object that just gained an owner.
func (gc *GarbageCollector) attemptToDelete(ctx context.Context, obj *metav1.PartialObjectMetadata) error {
	if len(obj.OwnerReferences) == 0 {
		return nil
	}
	v, err := gc.plan(ctx, obj)
	if err != nil || (!v.Delete && len(v.RemoveRefs) == 0) {
		return err
	}
	live := newMeta(obj.GroupVersionKind())
	if err := gc.live.Get(ctx, client.ObjectKeyFromObject(obj), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	live.SetGroupVersionKind(obj.GroupVersionKind())
	if live.UID != obj.UID || live.DeletionTimestamp != nil {
		return nil
	}
	if v, err = gc.plan(ctx, live); err != nil {
		return err
	}
	return gc.carryOut(ctx, live, v)
}

// plan observes obj's owners and decides.
func (gc *GarbageCollector) plan(ctx context.Context, obj *metav1.PartialObjectMetadata) (verdict, error) {
	owners := make([]observedOwner, 0, len(obj.OwnerReferences))
	waiting := false
	for _, ref := range obj.OwnerReferences {
		state, err := gc.observeOwner(ctx, obj, ref)
		if err != nil {
			return verdict{}, err
		}
		waiting = waiting || state == ownerWaiting
		owners = append(owners, observedOwner{Ref: ref, State: state})
	}
	facts := dependentFacts{Finalizers: obj.Finalizers}
	if waiting {
		deps, err := dependents(ctx, gc.cache, obj.UID)
		if err != nil {
			return verdict{}, err
		}
		facts.HasDependents = len(deps) > 0
		facts.DependentDeletingDependents = slices.ContainsFunc(deps, deletingInForeground)
	}
	return decideDependent(owners, facts), nil
}

// carryOut writes a verdict on the live dependent obj.
func (gc *GarbageCollector) carryOut(ctx context.Context, obj *metav1.PartialObjectMetadata, v verdict) error {
	logger := log.FromContext(ctx)
	if len(v.RemoveRefs) > 0 {
		logger.Info("dropping references to owners that are gone", "owners", v.RemoveRefs, "reason", v.Reason)
		return gc.patchOwnerRefs(ctx, obj, v.RemoveRefs)
	}
	if !v.Delete {
		return nil
	}
	if v.UnblockRefs {
		if err := gc.unblockOwnerRefs(ctx, obj); err != nil {
			return err
		}
	}
	logger.Info("deleting", "propagationPolicy", v.Policy, "reason", v.Reason)
	err := gc.writer.Delete(ctx, obj, client.PropagationPolicy(v.Policy), client.Preconditions{UID: &obj.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone already, or replaced by a new object of that name: either
		// way not this dependent's business any more.
		return nil
	}
	return err
}

// observeOwner finds the state of one owner of dependent. A watched owner
// is read from the cache; if the cache does not hold it with the referenced
// UID, or the kind is not watched, a live read decides, because only the
// apiserver can tell that an owner is really gone.
func (gc *GarbageCollector) observeOwner(ctx context.Context, dependent *metav1.PartialObjectMetadata, ref metav1.OwnerReference) (ownerState, error) {
	logger := log.FromContext(ctx).WithValues("owner", ref.Kind+" "+ref.Name)
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		logger.Info("leaving an ownerReference with an invalid apiVersion alone", "apiVersion", ref.APIVersion)
		return ownerUnresolvable, nil
	}
	gvk := gv.WithKind(ref.Kind)
	var namespaced bool
	watched, isWatched := watchedByGroupKind(gvk.GroupKind())
	if isWatched {
		gvk, namespaced = watched.GVK, watched.Namespaced
	} else {
		mapping, err := gc.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			logger.Info("leaving an ownerReference to a kind the apiserver does not serve alone", "apiVersion", ref.APIVersion)
			return ownerUnresolvable, nil
		}
		if err != nil {
			return 0, fmt.Errorf("finding the resource of owner kind %s: %w", gvk, err)
		}
		namespaced = mapping.Scope.Name() == meta.RESTScopeNameNamespace
	}
	ns, ok := ownerNamespace(dependent.Namespace, namespaced)
	if !ok {
		logger.Info("ignoring an invalid ownerReference: a cluster-scoped object cannot have a namespaced owner (OwnerRefInvalidNamespace)")
		return ownerUnresolvable, nil
	}
	key := client.ObjectKey{Namespace: ns, Name: ref.Name}
	owner := newMeta(gvk)
	if isWatched {
		err := gc.cache.Get(ctx, key, owner)
		if err == nil && owner.UID == ref.UID {
			return stateOf(owner), nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
	}
	owner = newMeta(gvk)
	err = gc.live.Get(ctx, key, owner)
	switch {
	case apierrors.IsNotFound(err):
		return ownerDangling, nil
	case err != nil:
		return 0, fmt.Errorf("reading owner %s %s: %w", gvk.Kind, key, err)
	case owner.UID != ref.UID:
		return ownerDangling, nil
	}
	return stateOf(owner), nil
}

// stateOf is the state of an owner that exists with the referenced UID.
func stateOf(owner *metav1.PartialObjectMetadata) ownerState {
	if deletingInForeground(owner) {
		return ownerWaiting
	}
	return ownerSolid
}
