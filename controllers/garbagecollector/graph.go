package garbagecollector

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// watchedKind is a kind whose objects the garbage collector watches, as
// owners and as dependents.
type watchedKind struct {
	GVK        schema.GroupVersionKind
	Namespaced bool
}

// watchedKinds are every skiff kind and the built-in kinds that skiff's
// controllers create or own. Owners of other kinds are still honoured,
// through a live read, but their deletion is not observed.
var watchedKinds = []watchedKind{
	{skiffcorev1.GroupVersion.WithKind("Pod"), true},
	{skiffcorev1.GroupVersion.WithKind("Node"), false},
	{skiffcorev1.GroupVersion.WithKind("Service"), true},
	{skiffcorev1.GroupVersion.WithKind("EndpointSlice"), true},
	{skiffappsv1.GroupVersion.WithKind("ReplicaSet"), true},
	{skiffappsv1.GroupVersion.WithKind("Deployment"), true},
	{skiffappsv1.GroupVersion.WithKind("StatefulSet"), true},
	{skiffappsv1.GroupVersion.WithKind("DaemonSet"), true},
	{skiffbatchv1.GroupVersion.WithKind("Job"), true},
	{skiffbatchv1.GroupVersion.WithKind("CronJob"), true},
	{schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ControllerRevision"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, true},
	{schema.GroupVersionKind{Version: "v1", Kind: "Secret"}, true},
}

// watchedByGroupKind finds a watched kind whatever the version an
// ownerReference names.
func watchedByGroupKind(gk schema.GroupKind) (watchedKind, bool) {
	for _, k := range watchedKinds {
		if k.GVK.GroupKind() == gk {
			return k, true
		}
	}
	return watchedKind{}, false
}

// objectKey identifies one object in the work queue: kind, namespace and
// name. The UID is checked on every read, so a recreated object with the
// same name is never mistaken for the one that was queued.
type objectKey struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

func (k objectKey) String() string {
	if k.Namespace == "" {
		return fmt.Sprintf("%s %s", k.GVK.Kind, k.Name)
	}
	return fmt.Sprintf("%s %s/%s", k.GVK.Kind, k.Namespace, k.Name)
}

func (k objectKey) namespacedName() types.NamespacedName {
	return types.NamespacedName{Namespace: k.Namespace, Name: k.Name}
}

// newMeta returns an empty metadata-only object of the given kind.
func newMeta(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(gvk)
	return obj
}

// ownerUIDField indexes every watched object by the UIDs of its owners, so
// that an owner's deletion finds exactly its dependents.
const ownerUIDField = "gc.skiff.dev/owner-uid"

// ownerUIDs is the index function for ownerUIDField.
func ownerUIDs(obj client.Object) []string {
	refs := obj.GetOwnerReferences()
	uids := make([]string, 0, len(refs))
	for _, r := range refs {
		uids = append(uids, string(r.UID))
	}
	return uids
}

// ownerKeys are the queue keys of the watched owners that obj references.
// References of a cluster-scoped object to a namespaced kind are invalid
// and left out.
func ownerKeys(obj client.Object) []objectKey {
	var keys []objectKey
	for _, r := range obj.GetOwnerReferences() {
		gv, err := schema.ParseGroupVersion(r.APIVersion)
		if err != nil {
			continue
		}
		k, ok := watchedByGroupKind(gv.WithKind(r.Kind).GroupKind())
		if !ok {
			continue
		}
		ns, ok := ownerNamespace(obj.GetNamespace(), k.Namespaced)
		if !ok {
			continue
		}
		keys = append(keys, objectKey{GVK: k.GVK, Namespace: ns, Name: r.Name})
	}
	return keys
}

// dependents lists, from the cache, every watched object that references the
// owner with the given UID, whatever its kind or namespace.
func dependents(ctx context.Context, c client.Reader, owner types.UID) ([]*metav1.PartialObjectMetadata, error) {
	var out []*metav1.PartialObjectMetadata
	for _, k := range watchedKinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List"))
		if err := c.List(ctx, list, client.MatchingFields{ownerUIDField: string(owner)}); err != nil {
			return nil, fmt.Errorf("listing the %s dependents of %s: %w", k.GVK.Kind, owner, err)
		}
		for i := range list.Items {
			obj := list.Items[i].DeepCopy()
			obj.SetGroupVersionKind(k.GVK)
			out = append(out, obj)
		}
	}
	return out, nil
}

// keyOf is the queue key of a watched object.
func keyOf(obj *metav1.PartialObjectMetadata) objectKey {
	return objectKey{GVK: obj.GroupVersionKind(), Namespace: obj.Namespace, Name: obj.Name}
}
