package daemonset

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
)

// templateHash names a pod template revision: the same template always
// hashes the same, so pods carrying the hash in their
// controller-revision-hash label are up to date. The collision count
// changes the hash when two templates would collide.
func templateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	// json.Marshal of a Go struct is deterministic (fields in order, map
	// keys sorted).
	data, _ := json.Marshal(template)
	h.Write(data)
	if collisionCount != nil {
		fmt.Fprintf(h, "%d", *collisionCount)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// revisionData is what a ControllerRevision stores: the patch that
// restores the DaemonSet's template, as upstream.
func revisionData(ds *skiffappsv1.DaemonSet) ([]byte, error) {
	return json.Marshal(map[string]any{
		"spec": map[string]any{"template": ds.Spec.Template, "$patch": "replace"},
	})
}

// sameRevisionData reports whether two revisions' data restore the same
// template. They are compared as JSON values, not bytes, since the
// apiserver may re-encode what it stores.
func sameRevisionData(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return equality.Semantic.DeepEqual(va, vb)
}

// ensureRevision makes sure a ControllerRevision records the current
// template and is the newest one the DaemonSet has, and returns its hash,
// which labels the pods of that template. It lets a rollback (and
// `kubectl rollout history`) find earlier templates. As upstream, the
// revision is found by its data, so that a template brought back after a
// collision keeps its first hash.
func (r *Reconciler) ensureRevision(ctx context.Context, ds *skiffappsv1.DaemonSet) (string, error) {
	data, err := revisionData(ds)
	if err != nil {
		return "", err
	}
	var revs appsv1.ControllerRevisionList
	if err := r.List(ctx, &revs, client.InNamespace(ds.Namespace), controllerref.ControlledBy(ds.UID)); err != nil {
		return "", fmt.Errorf("listing the revisions of %s: %w", ds.Name, err)
	}
	var newest int64
	var current *appsv1.ControllerRevision
	for i := range revs.Items {
		rev := &revs.Items[i]
		newest = max(newest, rev.Revision)
		if rev.Labels[appsv1.ControllerRevisionHashLabelKey] != "" && sameRevisionData(rev.Data.Raw, data) &&
			(current == nil || rev.Revision > current.Revision) {
			current = rev
		}
	}
	if current == nil {
		hash := templateHash(&ds.Spec.Template, ds.Status.CollisionCount)
		return hash, r.createRevision(ctx, ds, hash, data, newest+1)
	}
	if current.Revision < newest {
		// A template brought back (a rollback) becomes the newest
		// revision again, as upstream renumbers it.
		orig := current.DeepCopy()
		current.Revision = newest + 1
		if err := r.Patch(ctx, current, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return "", fmt.Errorf("renumbering revision %s: %w", current.Name, err)
		}
	}
	return current.Labels[appsv1.ControllerRevisionHashLabelKey], nil
}

// createRevision records the DaemonSet's current template (data) as
// revision number n. A revision of that name holding another template is
// a hash collision: the collision count goes up, which changes the hash.
func (r *Reconciler) createRevision(ctx context.Context, ds *skiffappsv1.DaemonSet, hash string, data []byte, n int64) error {
	ref, err := controllerref.NewControllerRef(ds, r.Scheme())
	if err != nil {
		return err
	}
	labels := map[string]string{}
	for k, v := range ds.Spec.Template.Labels {
		labels[k] = v
	}
	labels[appsv1.ControllerRevisionHashLabelKey] = hash
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ds.Name + "-" + hash,
			Namespace:       ds.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: n,
	}
	err = r.Create(ctx, rev)
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("creating revision %s: %w", rev.Name, err)
		}
		return nil
	}
	// The cache may not show our own revision yet: read it from the
	// apiserver before calling it a collision.
	var existing appsv1.ControllerRevision
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rev), &existing); err != nil {
		return fmt.Errorf("reading revision %s: %w", rev.Name, err)
	}
	if sameRevisionData(existing.Data.Raw, data) {
		return nil
	}
	return r.bumpCollisionCount(ctx, ds, rev.Name)
}

// bumpCollisionCount raises status.collisionCount, as upstream, after the
// revision name of the template was found taken by another template. The
// count is read again first: if another sync already raised it, the hash
// was stale and raising it again is not needed. Either way it returns an
// error, so that the sync is retried with the new hash.
func (r *Reconciler) bumpCollisionCount(ctx context.Context, ds *skiffappsv1.DaemonSet, name string) error {
	var cur skiffappsv1.DaemonSet
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ds), &cur); err != nil {
		return fmt.Errorf("reading %s/%s to raise its collision count: %w", ds.Namespace, ds.Name, err)
	}
	if !equality.Semantic.DeepEqual(cur.Status.CollisionCount, ds.Status.CollisionCount) {
		return fmt.Errorf("the collision count of %s/%s changed while revision %s was created; retrying", ds.Namespace, ds.Name, name)
	}
	count := ptr.Deref(cur.Status.CollisionCount, 0) + 1
	cur.Status.CollisionCount = &count
	if err := r.Status().Update(ctx, &cur); err != nil {
		return fmt.Errorf("raising the collision count of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return fmt.Errorf("revision %s already exists with another template: status.collisionCount raised to %d; retrying with a new hash", name, count)
}

// defaultRevisionHistoryLimit is apps/v1's default revisionHistoryLimit.
const defaultRevisionHistoryLimit = 10

// staleRevisions picks the revisions to delete: beyond the history limit,
// the oldest ones that are neither current nor still run by a pod.
func staleRevisions(revs []appsv1.ControllerRevision, limit *int32, current string, inUse map[string]bool) []*appsv1.ControllerRevision {
	keep := defaultRevisionHistoryLimit
	if limit != nil {
		keep = int(*limit)
	}
	var old []*appsv1.ControllerRevision
	for i := range revs {
		h := revs[i].Labels[appsv1.ControllerRevisionHashLabelKey]
		if h != current && !inUse[h] && revs[i].DeletionTimestamp == nil {
			old = append(old, &revs[i])
		}
	}
	if len(old) <= keep {
		return nil
	}
	slices.SortFunc(old, func(a, b *appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	return old[:len(old)-keep]
}

// cleanupHistory deletes the revisions beyond spec.revisionHistoryLimit.
func (r *Reconciler) cleanupHistory(ctx context.Context, ds *skiffappsv1.DaemonSet, hash string, pods []*skiffcorev1.Pod) error {
	var revs appsv1.ControllerRevisionList
	if err := r.List(ctx, &revs, client.InNamespace(ds.Namespace), controllerref.ControlledBy(ds.UID)); err != nil {
		return fmt.Errorf("listing the revisions of %s: %w", ds.Name, err)
	}
	inUse := map[string]bool{}
	for _, p := range pods {
		inUse[p.Labels[appsv1.ControllerRevisionHashLabelKey]] = true
	}
	for _, rev := range staleRevisions(revs.Items, ds.Spec.RevisionHistoryLimit, hash, inUse) {
		if err := r.Delete(ctx, rev, client.Preconditions{UID: &rev.UID}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting revision %s: %w", rev.Name, err)
		}
	}
	return nil
}
