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
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/recorder"
)

// Reconciler rolls each Deployment towards its template, one planned step
// per pass.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache, for the recheck before adoption.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
}

// Setup registers the Deployment controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "deployment-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes ReplicaSets by controller and watches
// Deployments, the ReplicaSets they own, and orphan ReplicaSets they may
// adopt.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := controllerref.IndexByControllerUID(context.Background(), mgr.GetFieldIndexer(), &skiffappsv1.ReplicaSet{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("deployment").
		For(&skiffappsv1.Deployment{}).
		Owns(&skiffappsv1.ReplicaSet{}).
		Watches(&skiffappsv1.ReplicaSet{}, handler.EnqueueRequestsFromMapFunc(r.adopters)).
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

	// 2. Claim its ReplicaSets (adopt matching orphans, release ours that no
	// longer match) and split them into the new one (the current template's)
	// and the old ones, oldest first.
	owned, err := r.claimReplicaSets(ctx, &d)
	if err != nil {
		return ctrl.Result{}, err
	}
	newRS, old := splitReplicaSets(owned, &d.Spec.Template)

	// 3. A rollback request rewrites spec.template; the update brings us
	// back for an ordinary rollout.
	if want, ok := d.Annotations[RollbackToAnnotation]; ok {
		return ctrl.Result{}, r.rollback(ctx, &d, want, owned)
	}

	// 4. Create the new ReplicaSet, empty: the planner grows it. A paused
	// Deployment starts no new template. A name taken by another template
	// raises collisionCount, and the status update brings us back to try
	// the next name; a refused creation is reported and retried. An
	// existing new ReplicaSet follows the Deployment's annotations,
	// minReadySeconds and revision, and the Deployment its revision.
	created := false
	switch {
	case newRS == nil && d.Spec.Paused:
	case newRS == nil:
		newRS, err = r.createNewReplicaSet(ctx, &d, old, strategy)
		var refused *createError
		switch {
		case errors.Is(err, errHashCollision):
			return ctrl.Result{}, r.bumpCollisionCount(ctx, &d, err)
		case errors.As(err, &refused):
			return ctrl.Result{}, r.reportCreateError(ctx, &d, refused)
		case err != nil:
			return ctrl.Result{}, err
		}
		created = true
	default:
		if err := r.syncNewReplicaSet(ctx, &d, newRS, old); err != nil {
			return ctrl.Result{}, err
		}
	}
	if newRS != nil {
		if err := r.syncRevision(ctx, &d, newRS); err != nil {
			return ctrl.Result{}, err
		}
	}

	// 5. Take one step. A paused Deployment still follows scaling events,
	// as upstream, but does not roll.
	if newRS != nil {
		state := rolloutState(&d, newRS, old, strategy)
		if !d.Spec.Paused || isScalingEvent(state) {
			plan := PlanRollout(state)
			if err := r.apply(ctx, &d, plan, append([]*skiffappsv1.ReplicaSet{newRS}, old...), created); err != nil {
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

// apply writes the plan's scale actions, one merge patch per ReplicaSet
// (spec.replicas and the desired/max annotations). all starts with the new
// ReplicaSet; created says this pass created it.
func (r *Reconciler) apply(ctx context.Context, d *skiffappsv1.Deployment, plan Plan, all []*skiffappsv1.ReplicaSet, created bool) error {
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
			r.Recorder.Eventf(d, rs, corev1.EventTypeNormal, "ScalingReplicaSet", "Scale", "%s", scalingMessage(rs.Name, from, a.Replicas, created && rs == all[0]))
		}
		*rs = *patched
	}
	return nil
}

// scalingMessage is the ScalingReplicaSet Event's message in upstream's
// words: a ReplicaSet created in this pass gets its first size, as upstream
// creates it with that size; any other is scaled from one size to another.
func scalingMessage(name string, from, to int32, created bool) string {
	if created {
		return fmt.Sprintf("Scaled up replica set %s to %d", name, to)
	}
	direction := "down"
	if to > from {
		direction = "up"
	}
	return fmt.Sprintf("Scaled %s replica set %s to %d from %d", direction, name, to, from)
}

// Rollback Event reasons, as upstream's.
const (
	ReasonRollbackDone              = "DeploymentRollback"
	ReasonRollbackRevisionNotFound  = "DeploymentRollbackRevisionNotFound"
	ReasonRollbackTemplateUnchanged = "DeploymentRollbackTemplateUnchanged"
	ReasonRollbackInvalid           = "DeploymentRollbackInvalid"
)

// rollback copies the template of the requested revision into spec.template
// and removes the request, recording the outcome in an Event once written.
// A request that cannot be honoured is dropped too: retrying would not
// help.
func (r *Reconciler) rollback(ctx context.Context, d *skiffappsv1.Deployment, want string, rss []*skiffappsv1.ReplicaSet) error {
	patched := d.DeepCopy()
	delete(patched.Annotations, RollbackToAnnotation)
	eventType, reason, msg := corev1.EventTypeWarning, ReasonRollbackInvalid,
		fmt.Sprintf("%s=%q: want a revision number, or 0 for the previous one", RollbackToAnnotation, want)
	if wantRev, err := strconv.ParseInt(want, 10, 64); err == nil && wantRev >= 0 {
		template, rev, err := rollbackTemplate(rss, maxRevision(rss), wantRev)
		switch {
		case err != nil:
			reason, msg = ReasonRollbackRevisionNotFound, fmt.Sprintf("Unable to find revision to roll back to: %v", err)
		case equalIgnoreHash(template, &d.Spec.Template):
			reason, msg = ReasonRollbackTemplateUnchanged, fmt.Sprintf("The rollback revision contains the same template as current deployment %q", d.Name)
		default:
			patched.Spec.Template = *template
			eventType, reason, msg = corev1.EventTypeNormal, ReasonRollbackDone, fmt.Sprintf("Rolled back deployment %q to revision %d", d.Name, rev)
		}
	}
	if err := r.Patch(ctx, patched, client.MergeFrom(d)); err != nil {
		return fmt.Errorf("rolling back %s: %w", d.Name, err)
	}
	r.Recorder.Eventf(d, nil, eventType, reason, "Rollback", "%s", msg)
	return nil
}
