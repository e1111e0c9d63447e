package statefulset

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
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
	"skiff.dev/skiff/internal/controllerref"
)

// revisionData is what a ControllerRevision holds, as upstream: a patch
// that replaces the set's pod template.
type revisionData struct {
	Spec struct {
		Template json.RawMessage `json:"template"`
	} `json:"spec"`
}

// encodeTemplate returns the revision data for a template.
func encodeTemplate(t *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": m}})
}

// decodeTemplate returns the template a revision holds.
func decodeTemplate(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var d revisionData
	if err := json.Unmarshal(rev.Data.Raw, &d); err != nil {
		return nil, fmt.Errorf("decoding revision %s: %w", rev.Name, err)
	}
	var t corev1.PodTemplateSpec
	if err := json.Unmarshal(d.Spec.Template, &t); err != nil {
		return nil, fmt.Errorf("decoding the template of revision %s: %w", rev.Name, err)
	}
	return &t, nil
}

// revisionName names the revision of a template: the set's name and a hash
// of the template and the collision count, which a hash collision bumps.
func revisionName(set *skiffappsv1.StatefulSet, data []byte) string {
	h := fnv.New32a()
	h.Write(data)
	if c := set.Status.CollisionCount; c != nil {
		fmt.Fprintf(h, "%d", *c)
	}
	return set.Name + "-" + rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// sameTemplate tells whether a revision holds the template.
func sameTemplate(rev *appsv1.ControllerRevision, t *corev1.PodTemplateSpec) bool {
	got, err := decodeTemplate(rev)
	return err == nil && equality.Semantic.DeepEqual(got, t)
}

// errCollision means the update revision's name is taken by another
// template: the collision count was bumped and the sync must run again.
var errCollision = fmt.Errorf("revision name collision")

// revisions lists the set's ControllerRevisions.
func (r *Reconciler) revisions(ctx context.Context, set *skiffappsv1.StatefulSet) ([]*appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	if err := r.List(ctx, &list, client.InNamespace(set.Namespace), controllerref.ControlledBy(set.UID)); err != nil {
		return nil, fmt.Errorf("listing the revisions of %s: %w", set.Name, err)
	}
	out := make([]*appsv1.ControllerRevision, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// updateRevision returns the revision of the set's current template,
// creating it when none holds it yet.
func (r *Reconciler) updateRevision(ctx context.Context, set *skiffappsv1.StatefulSet, revs []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	var maxRevision int64
	for _, rev := range revs {
		maxRevision = max(maxRevision, rev.Revision)
	}
	for _, rev := range revs {
		if sameTemplate(rev, &set.Spec.Template) {
			return rev, nil
		}
	}
	data, err := encodeTemplate(&set.Spec.Template)
	if err != nil {
		return nil, err
	}
	ref, err := controllerref.NewControllerRef(set, r.Scheme())
	if err != nil {
		return nil, err
	}
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            revisionName(set, data),
			Namespace:       set.Namespace,
			Labels:          maps.Clone(set.Spec.Template.Labels),
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: maxRevision + 1,
	}
	err = r.Create(ctx, rev)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		return rev, err
	}
	// The name is taken: by this very revision, not yet in the cache, or
	// by another template (a hash collision).
	var existing appsv1.ControllerRevision
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rev), &existing); err != nil {
		return nil, err
	}
	if metav1.IsControlledBy(&existing, set) && sameTemplate(&existing, &set.Spec.Template) {
		return &existing, nil
	}
	set.Status.CollisionCount = ptr.To(ptr.Deref(set.Status.CollisionCount, 0) + 1)
	if err := r.Status().Update(ctx, set); err != nil {
		return nil, err
	}
	return nil, errCollision
}

// historyToDelete returns the revisions beyond the set's
// revisionHistoryLimit (10 by default), oldest first. The current and
// update revisions, and any revision a pod still runs, are kept and do not
// count.
func historyToDelete(revs []*appsv1.ControllerRevision, limit *int32, live map[string]bool) []*appsv1.ControllerRevision {
	var history []*appsv1.ControllerRevision
	for _, rev := range revs {
		if !live[rev.Name] {
			history = append(history, rev)
		}
	}
	excess := len(history) - int(ptr.Deref(limit, 10))
	if excess <= 0 {
		return nil
	}
	slices.SortFunc(history, func(a, b *appsv1.ControllerRevision) int { return cmp.Compare(a.Revision, b.Revision) })
	return history[:excess]
}

// truncateHistory deletes the revisions beyond the set's history limit.
func (r *Reconciler) truncateHistory(ctx context.Context, set *skiffappsv1.StatefulSet, revs []*appsv1.ControllerRevision, live map[string]bool) error {
	var errs []error
	for _, rev := range historyToDelete(revs, set.Spec.RevisionHistoryLimit, live) {
		if err := r.Delete(ctx, rev, client.Preconditions{UID: &rev.UID}); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("deleting revision %s: %w", rev.Name, err))
		}
	}
	return errors.Join(errs...)
}
