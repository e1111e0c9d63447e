package deployment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/controllerref"
)

// errHashCollision says that the name the template hash gives is taken by a
// ReplicaSet that is not the Deployment's for this template.
var errHashCollision = errors.New("template hash collision")

// ReasonReplicaSetCreateError is upstream's Progressing reason and Event
// reason when the apiserver refuses the new ReplicaSet.
const ReasonReplicaSetCreateError = "ReplicaSetCreateError"

// createError is the apiserver's refusal of the new ReplicaSet, in
// upstream's words.
type createError struct {
	name string
	err  error
}

func (e *createError) Error() string {
	return fmt.Sprintf("Failed to create new replica set %q: %v", e.name, e.err)
}

func (e *createError) Unwrap() error { return e.err }

// splitReplicaSets returns the ReplicaSet that runs the Deployment's
// template and the others, oldest first. As upstream's FindNewReplicaSet,
// the new one is found by its template (ignoring the hash label), not by its
// name: a rollback then reuses the old ReplicaSet even when collisionCount
// changed since it was created. Of two with the same template the oldest
// wins. Ones being deleted are left out.
func splitReplicaSets(rss []*skiffappsv1.ReplicaSet, template *corev1.PodTemplateSpec) (*skiffappsv1.ReplicaSet, []*skiffappsv1.ReplicaSet) {
	var live []*skiffappsv1.ReplicaSet
	for _, rs := range rss {
		if rs.DeletionTimestamp == nil {
			live = append(live, rs)
		}
	}
	sort.SliceStable(live, func(i, j int) bool {
		a, b := live[i].CreationTimestamp, live[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return live[i].Name < live[j].Name
	})
	var newRS *skiffappsv1.ReplicaSet
	var old []*skiffappsv1.ReplicaSet
	for _, rs := range live {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// equalIgnoreHash reports whether two pod templates are semantically equal
// once the pod-template-hash label is left out of both.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, PodTemplateHashLabel)
	delete(b.Labels, PodTemplateHashLabel)
	return equality.Semantic.DeepEqual(a, b)
}

// annotationsNotCopied are the Deployment annotations its ReplicaSets do
// not inherit, as upstream: kubectl's record of the Deployment's own spec,
// the ones the controller sets per ReplicaSet, and the rollback request.
var annotationsNotCopied = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	RevisionAnnotation:                 true,
	RevisionHistoryAnnotation:          true,
	DesiredReplicasAnnotation:          true,
	MaxReplicasAnnotation:              true,
	RollbackToAnnotation:               true,
}

// copyAnnotations copies the Deployment's annotations onto rs, as upstream
// does for the new ReplicaSet on every sync. Annotations removed from the
// Deployment stay on the ReplicaSet, as upstream.
func copyAnnotations(d *skiffappsv1.Deployment, rs *skiffappsv1.ReplicaSet) {
	for k, v := range d.Annotations {
		if annotationsNotCopied[k] {
			continue
		}
		if rs.Annotations == nil {
			rs.Annotations = map[string]string{}
		}
		rs.Annotations[k] = v
	}
}

// createNewReplicaSet creates the ReplicaSet for the current template with
// zero replicas, named <deployment>-<hash> so that a repeated pass cannot
// create a second one, and with the next revision number. It returns
// errHashCollision when that name is taken by a ReplicaSet with another
// template, or by one that is not the Deployment's.
func (r *Reconciler) createNewReplicaSet(ctx context.Context, d *skiffappsv1.Deployment, old []*skiffappsv1.ReplicaSet, strategy Strategy) (*skiffappsv1.ReplicaSet, error) {
	ref, err := controllerref.NewControllerRef(d, r.Scheme())
	if err != nil {
		return nil, err
	}
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	template := *d.Spec.Template.DeepCopy()
	template.Labels = withLabel(template.Labels, PodTemplateHashLabel, hash)
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels = withLabel(selector.MatchLabels, PodTemplateHashLabel, hash)
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	rs := &skiffappsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          template.Labels,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
	}
	copyAnnotations(d, rs)
	rs.Annotations = withLabel(rs.Annotations, RevisionAnnotation, strconv.FormatInt(maxRevision(old)+1, 10))
	rs.Annotations[DesiredReplicasAnnotation] = strconv.Itoa(int(replicas))
	rs.Annotations[MaxReplicasAnnotation] = strconv.Itoa(int(replicas + strategy.MaxSurge))
	rs.Spec.Replicas = ptr.To[int32](0)
	rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	rs.Spec.Selector = selector
	rs.Spec.Template = template
	err = r.Create(ctx, rs)
	if apierrors.IsAlreadyExists(err) {
		return nil, r.checkCollision(ctx, d, rs.Name)
	}
	if err != nil {
		return nil, &createError{name: rs.Name, err: err}
	}
	return rs, nil
}

// reportCreateError makes a refused creation visible, as upstream: a
// Warning Event and, for a Deployment with a progress deadline, Progressing
// False with ReplicaSetCreateError. It returns err, so that the pass is
// retried with back-off.
func (r *Reconciler) reportCreateError(ctx context.Context, d *skiffappsv1.Deployment, err *createError) error {
	r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, ReasonReplicaSetCreateError, "Create", "%s", err.Error())
	if !hasProgressDeadline(d) {
		return err
	}
	patched := d.DeepCopy()
	setCondition(&patched.Status, condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonReplicaSetCreateError, err.Error(), r.Clock.Now()))
	if equality.Semantic.DeepEqual(patched.Status, d.Status) {
		return err
	}
	if perr := r.Status().Patch(ctx, patched, client.MergeFromWithOptions(d, client.MergeFromWithOptimisticLock{})); perr != nil {
		return errors.Join(err, fmt.Errorf("reporting it in the status of %s: %w", d.Name, perr))
	}
	return err
}

// checkCollision tells apart the two reasons the new ReplicaSet's name can
// be taken. Ours with the current template, not yet in the cache, is found
// by a later pass: an error retries. Anything else is a hash collision.
func (r *Reconciler) checkCollision(ctx context.Context, d *skiffappsv1.Deployment, name string) error {
	var existing skiffappsv1.ReplicaSet
	if err := r.Get(ctx, client.ObjectKey{Namespace: d.Namespace, Name: name}, &existing); err != nil {
		return fmt.Errorf("ReplicaSet %s already exists but cannot be read yet: %w", name, err)
	}
	if metav1.IsControlledBy(&existing, d) && equalIgnoreHash(&existing.Spec.Template, &d.Spec.Template) {
		return fmt.Errorf("ReplicaSet %s already exists; retrying once the cache has it", name)
	}
	return fmt.Errorf("ReplicaSet %s exists with another template or owner: %w", name, errHashCollision)
}

// bumpCollisionCount raises status.collisionCount, as upstream, so that the
// next pass hashes the template to another name. The optimistic lock keeps
// two passes on a stale cache from raising it twice.
func (r *Reconciler) bumpCollisionCount(ctx context.Context, d *skiffappsv1.Deployment, cause error) error {
	patched := d.DeepCopy()
	patched.Status.CollisionCount = ptr.To(ptr.Deref(d.Status.CollisionCount, 0) + 1)
	if err := r.Status().Patch(ctx, patched, client.MergeFromWithOptions(d, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("raising collisionCount of %s after %v: %w", d.Name, cause, err)
	}
	logf.FromContext(ctx).Info("found a hash collision; raised collisionCount", "cause", cause.Error(),
		"oldCollisionCount", ptr.Deref(d.Status.CollisionCount, 0), "newCollisionCount", *patched.Status.CollisionCount)
	return nil
}

// syncNewReplicaSet brings an existing new ReplicaSet up to date with the
// Deployment, as upstream does on every sync: the Deployment's annotations,
// spec.minReadySeconds (which changes no template, so no new ReplicaSet),
// and, for one reused after a rollback, the next revision number, so that
// the revision order stays the order in which templates were rolled out
// (the one it had goes to its revision history).
func (r *Reconciler) syncNewReplicaSet(ctx context.Context, d *skiffappsv1.Deployment, rs *skiffappsv1.ReplicaSet, old []*skiffappsv1.ReplicaSet) error {
	patched := rs.DeepCopy()
	copyAnnotations(d, patched)
	if top := maxRevision(old); revision(rs) <= top {
		patched.Annotations = withLabel(patched.Annotations, RevisionAnnotation, strconv.FormatInt(top+1, 10))
		if was, ok := rs.Annotations[RevisionAnnotation]; ok {
			patched.Annotations[RevisionHistoryAnnotation] = appendRevisionHistory(rs.Annotations[RevisionHistoryAnnotation], was)
		}
	}
	patched.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	if equality.Semantic.DeepEqual(patched, rs) {
		return nil
	}
	if err := r.Patch(ctx, patched, client.MergeFrom(rs)); err != nil {
		return fmt.Errorf("updating the annotations and minReadySeconds of ReplicaSet %s: %w", rs.Name, err)
	}
	*rs = *patched
	return nil
}

// syncRevision records the new ReplicaSet's revision on the Deployment, as
// upstream, where `kubectl describe` shows it. d takes the written object,
// so that a later optimistic write starts from its resourceVersion.
func (r *Reconciler) syncRevision(ctx context.Context, d *skiffappsv1.Deployment, newRS *skiffappsv1.ReplicaSet) error {
	rev, ok := newRS.Annotations[RevisionAnnotation]
	if !ok || d.Annotations[RevisionAnnotation] == rev {
		return nil
	}
	patched := d.DeepCopy()
	patched.Annotations = withLabel(patched.Annotations, RevisionAnnotation, rev)
	if err := r.Patch(ctx, patched, client.MergeFrom(d)); err != nil {
		return fmt.Errorf("recording revision %s on Deployment %s: %w", rev, d.Name, err)
	}
	*d = *patched
	return nil
}

// withLabel returns a copy of m with k set to v. It serves annotations too.
func withLabel(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[k] = v
	return out
}

// maxRevision is the highest revision among the ReplicaSets.
func maxRevision(rss []*skiffappsv1.ReplicaSet) int64 {
	var top int64
	for _, rs := range rss {
		if v := revision(rs); v > top {
			top = v
		}
	}
	return top
}
