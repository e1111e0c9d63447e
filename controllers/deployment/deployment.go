// Package deployment rolls a Deployment's pods from one template to the
// next through ReplicaSets, with RollingUpdate and Recreate, revision
// history, rollback, pause, progress deadlines and, beyond upstream,
// automatic rollback.
//
// The decisions are pure: rollout_planner.go plans each step from the
// observed ReplicaSets and status.go derives the status. The Reconciler only
// reads, calls them, and writes.
package deployment

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/recorder"
)

// Reconciler rolls each Deployment towards its template, one planned step
// per pass.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
}

// Setup registers the Deployment controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{Client: mgr.GetClient(), Recorder: recorder.New(mgr, "deployment-controller"), Clock: clock.RealClock{}}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes ReplicaSets by controller and watches
// Deployments and the ReplicaSets they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := controllerref.IndexByControllerUID(context.Background(), mgr.GetFieldIndexer(), &skiffappsv1.ReplicaSet{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("deployment").
		For(&skiffappsv1.Deployment{}).
		Owns(&skiffappsv1.ReplicaSet{}).
		Complete(r)
}

// +kubebuilder:rbac:groups=apps.skiff.dev,resources=deployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=deployments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=deployments/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile takes one step of a Deployment's rollout: find or create the
// ReplicaSet for the current template, apply the planner's scale actions,
// then write the status the ReplicaSets show.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the Deployment. One being deleted belongs to the garbage
	// collector.
	var d skiffappsv1.Deployment
	if err := r.Get(ctx, req.NamespacedName, &d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if d.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	strategy, err := ResolveStrategy(d.Spec)
	if err != nil {
		r.Recorder.Eventf(&d, nil, corev1.EventTypeWarning, "InvalidStrategy", "Sync", "%v", err)
		return ctrl.Result{}, nil
	}

	// 2. List its ReplicaSets and split them into the new one (the current
	// template's) and the old ones, oldest first.
	var list skiffappsv1.ReplicaSetList
	if err := r.List(ctx, &list, client.InNamespace(d.Namespace), controllerref.ControlledBy(d.UID)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing the ReplicaSets of %s: %w", d.Name, err)
	}
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	newRS, old := splitReplicaSets(list.Items, hash)

	// 3. A rollback request rewrites spec.template; the update brings us
	// back for an ordinary rollout.
	if want, ok := d.Annotations[RollbackToAnnotation]; ok {
		return ctrl.Result{}, r.rollback(ctx, &d, want, list.Items)
	}

	// 4. Create the new ReplicaSet, empty: the planner grows it. A paused
	// Deployment starts no new template. A ReplicaSet reused for the current
	// template (after a rollback) takes the next revision number.
	created := false
	switch {
	case newRS == nil && d.Spec.Paused:
	case newRS == nil:
		if newRS, err = r.createNewReplicaSet(ctx, &d, hash, old, strategy); err != nil {
			return ctrl.Result{}, err
		}
		created = true
	case revision(newRS) <= maxRevision(old):
		if err := r.bumpRevision(ctx, newRS, maxRevision(old)+1); err != nil {
			return ctrl.Result{}, err
		}
	}

	// 5. Take one step. A paused Deployment still follows scaling events,
	// as upstream, but does not roll.
	if newRS != nil {
		state := rolloutState(&d, newRS, old, strategy)
		if !d.Spec.Paused || isScalingEvent(state) {
			plan := PlanRollout(state)
			if err := r.apply(ctx, &d, plan, append([]*skiffappsv1.ReplicaSet{newRS}, old...)); err != nil {
				return ctrl.Result{}, err
			}
		}
	} else {
		newRS = &skiffappsv1.ReplicaSet{} // status counts no updated pods
	}

	// 6. Write the status, and come back when the progress deadline runs
	// out.
	now := r.Clock.Now()
	status := calculateStatus(&d, newRS, old, strategy, created, now)
	var rolledBack *skiffappsv1.Deployment
	var rollbackMsg string
	if d.Annotations[AutoRollbackAnnotation] == "true" && justTimedOut(&d.Status, &status) {
		rolledBack, rollbackMsg = r.planAutoRollback(&d, newRS, old, &status, now)
	}
	if !equality.Semantic.DeepEqual(status, d.Status) {
		patched := d.DeepCopy()
		patched.Status = status
		// The optimistic lock refuses a status computed from a stale cache,
		// which would drop conditions written since.
		if err := r.Status().Patch(ctx, patched, client.MergeFromWithOptions(&d, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if rolledBack != nil {
		// Status first (above), then the template.
		if err := r.Patch(ctx, rolledBack, client.MergeFrom(&d)); err != nil {
			return ctrl.Result{}, fmt.Errorf("rolling %s back automatically: %w", d.Name, err)
		}
		r.Recorder.Eventf(&d, nil, corev1.EventTypeWarning, "AutoRollback", "Rollback", "%s", rollbackMsg)
		return ctrl.Result{}, nil
	}

	// 7. Once the rollout is complete, mark the new ReplicaSet as a safe
	// place to roll back to, and trim the revision history.
	if complete(&d, &status) {
		if err := r.markFullyAvailable(ctx, newRS); err != nil {
			return ctrl.Result{}, err
		}
		for _, rs := range historyToDelete(old, d.Spec.RevisionHistoryLimit) {
			if err := r.Delete(ctx, rs, client.Preconditions{UID: &rs.UID}); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("deleting old ReplicaSet %s beyond revisionHistoryLimit: %w", rs.Name, err)
			}
		}
	}
	if wait, ok := nextDeadlineCheck(&d, &status, now); ok {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

// splitReplicaSets returns the ReplicaSet for the template hash and the
// others, oldest first. Ones being deleted are left out.
func splitReplicaSets(items []skiffappsv1.ReplicaSet, hash string) (*skiffappsv1.ReplicaSet, []*skiffappsv1.ReplicaSet) {
	var newRS *skiffappsv1.ReplicaSet
	var old []*skiffappsv1.ReplicaSet
	for i := range items {
		rs := &items[i]
		switch {
		case rs.DeletionTimestamp != nil:
		case rs.Labels[PodTemplateHashLabel] == hash && newRS == nil:
			newRS = rs
		default:
			old = append(old, rs)
		}
	}
	sort.SliceStable(old, func(i, j int) bool {
		a, b := old[i].CreationTimestamp, old[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return old[i].Name < old[j].Name
	})
	return newRS, old
}

// rolloutState is the planner's view of the ReplicaSets.
func rolloutState(d *skiffappsv1.Deployment, newRS *skiffappsv1.ReplicaSet, old []*skiffappsv1.ReplicaSet, strategy Strategy) RolloutState {
	s := RolloutState{
		Replicas:       ptr.Deref(d.Spec.Replicas, 1),
		StatusReplicas: d.Status.Replicas,
		Strategy:       strategy,
		New:            replicaSetState(newRS),
	}
	for _, rs := range old {
		s.Old = append(s.Old, replicaSetState(rs))
	}
	return s
}

func replicaSetState(rs *skiffappsv1.ReplicaSet) ReplicaSetState {
	return ReplicaSetState{
		Name:            rs.Name,
		Replicas:        ptr.Deref(rs.Spec.Replicas, 1),
		Pods:            rs.Status.Replicas,
		Available:       rs.Status.AvailableReplicas,
		DesiredReplicas: int32Annotation(rs, DesiredReplicasAnnotation),
		MaxReplicas:     int32Annotation(rs, MaxReplicasAnnotation),
	}
}

func int32Annotation(rs *skiffappsv1.ReplicaSet, key string) *int32 {
	v, ok := rs.Annotations[key]
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return nil
	}
	return ptr.To(int32(n))
}

// createNewReplicaSet creates the ReplicaSet for the current template with
// zero replicas, named <deployment>-<hash> so that a repeated pass cannot
// create a second one, and with the next revision number.
func (r *Reconciler) createNewReplicaSet(ctx context.Context, d *skiffappsv1.Deployment, hash string, old []*skiffappsv1.ReplicaSet, strategy Strategy) (*skiffappsv1.ReplicaSet, error) {
	ref, err := controllerref.NewControllerRef(d, r.Scheme())
	if err != nil {
		return nil, err
	}
	template := *d.Spec.Template.DeepCopy()
	template.Labels = withLabel(template.Labels, PodTemplateHashLabel, hash)
	selector := d.Spec.Selector.DeepCopy()
	selector.MatchLabels = withLabel(selector.MatchLabels, PodTemplateHashLabel, hash)
	replicas := ptr.Deref(d.Spec.Replicas, 1)
	annotations := maps.Clone(d.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	// kubectl's record of the Deployment's own spec means nothing on a
	// ReplicaSet, as upstream.
	delete(annotations, "kubectl.kubernetes.io/last-applied-configuration")
	annotations[RevisionAnnotation] = strconv.FormatInt(maxRevision(old)+1, 10)
	annotations[DesiredReplicasAnnotation] = strconv.Itoa(int(replicas))
	annotations[MaxReplicasAnnotation] = strconv.Itoa(int(replicas + strategy.MaxSurge))
	rs := &skiffappsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          template.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
	}
	rs.Spec.Replicas = ptr.To[int32](0)
	rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	rs.Spec.Selector = selector
	rs.Spec.Template = template
	if err := r.Create(ctx, rs); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Ours, not yet in the cache: the next pass finds it. Someone
			// else's is a hash collision, which collisionCount escapes (not
			// handled yet).
			return nil, fmt.Errorf("ReplicaSet %s already exists; retrying once the cache has it: %w", rs.Name, err)
		}
		return nil, fmt.Errorf("creating ReplicaSet %s: %w", rs.Name, err)
	}
	r.Recorder.Eventf(d, rs, corev1.EventTypeNormal, "ScalingReplicaSet", "Create", "Created new replica set %q", rs.Name)
	return rs, nil
}

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
		if v, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64); err == nil && v > top {
			top = v
		}
	}
	return top
}

// apply writes the plan's scale actions, one merge patch per ReplicaSet
// (spec.replicas and the desired/max annotations).
func (r *Reconciler) apply(ctx context.Context, d *skiffappsv1.Deployment, plan Plan, all []*skiffappsv1.ReplicaSet) error {
	byName := map[string]*skiffappsv1.ReplicaSet{}
	for _, rs := range all {
		byName[rs.Name] = rs
	}
	for _, a := range plan.Actions {
		rs := byName[a.Name]
		patched := rs.DeepCopy()
		patched.Spec.Replicas = ptr.To(a.Replicas)
		if patched.Annotations == nil {
			patched.Annotations = map[string]string{}
		}
		patched.Annotations[DesiredReplicasAnnotation] = strconv.Itoa(int(a.DesiredReplicas))
		patched.Annotations[MaxReplicasAnnotation] = strconv.Itoa(int(a.MaxReplicas))
		if equality.Semantic.DeepEqual(patched, rs) {
			continue
		}
		if err := r.Patch(ctx, patched, client.MergeFrom(rs)); err != nil {
			return fmt.Errorf("scaling ReplicaSet %s to %d: %w", rs.Name, a.Replicas, err)
		}
		if from := ptr.Deref(rs.Spec.Replicas, 1); from != a.Replicas {
			logf.FromContext(ctx).V(1).Info("scaled", "replicaSet", rs.Name, "from", from, "to", a.Replicas, "reason", plan.Reason)
			r.Recorder.Eventf(d, rs, corev1.EventTypeNormal, "ScalingReplicaSet", "Scale", "Scaled %s replica set %s from %d to %d", direction(from, a.Replicas), rs.Name, from, a.Replicas)
		}
		*rs = *patched
	}
	return nil
}

func direction(from, to int32) string {
	if to > from {
		return "up"
	}
	return "down"
}

// rollback copies the template of the requested revision into spec.template
// and removes the request, recording the outcome in an Event. A request
// that cannot be honoured is dropped too: retrying would not help.
func (r *Reconciler) rollback(ctx context.Context, d *skiffappsv1.Deployment, want string, items []skiffappsv1.ReplicaSet) error {
	patched := d.DeepCopy()
	delete(patched.Annotations, RollbackToAnnotation)
	rss := make([]*skiffappsv1.ReplicaSet, 0, len(items))
	for i := range items {
		rss = append(rss, &items[i])
	}
	wantRev, err := strconv.ParseInt(want, 10, 64)
	if err != nil || wantRev < 0 {
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "RollbackInvalid", "Rollback",
			"%s=%q: want a revision number, or 0 for the previous one", RollbackToAnnotation, want)
	} else if template, rev, err := rollbackTemplate(rss, maxRevision(rss), wantRev); err != nil {
		r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "RollbackRevisionNotFound", "Rollback", "Unable to find revision to roll back to: %v", err)
	} else {
		patched.Spec.Template = *template
		r.Recorder.Eventf(d, nil, corev1.EventTypeNormal, "DeploymentRollback", "Rollback", "Rolled back deployment %q to revision %d", d.Name, rev)
	}
	if err := r.Patch(ctx, patched, client.MergeFrom(d)); err != nil {
		return fmt.Errorf("rolling back %s: %w", d.Name, err)
	}
	return nil
}

// bumpRevision gives a reused ReplicaSet the next revision number, so that
// the revision order stays the order in which templates were rolled out.
func (r *Reconciler) bumpRevision(ctx context.Context, rs *skiffappsv1.ReplicaSet, rev int64) error {
	patched := rs.DeepCopy()
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	patched.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
	if err := r.Patch(ctx, patched, client.MergeFrom(rs)); err != nil {
		return fmt.Errorf("setting revision %d on ReplicaSet %s: %w", rev, rs.Name, err)
	}
	*rs = *patched
	return nil
}
