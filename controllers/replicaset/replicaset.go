// Package replicaset keeps each ReplicaSet's number of pods running, with
// upstream's adoption, expectations, slow start and deletion ranking.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/expectations"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/recorder"
)

// concurrentSyncs is how many ReplicaSets are synced at once, upstream's
// --concurrent-replicaset-syncs default. One ReplicaSet is never synced by
// two workers at a time: the work queue hands out each key once.
const concurrentSyncs = 5

// maxRetryDelay caps the back-off after failed syncs. A ReplicaSet whose
// pods are refused (an admission policy, a quota) retries at least this
// often, so it recovers soon after the cause is removed: nothing else
// would wake it.
const maxRetryDelay = 30 * time.Second

// Reconciler keeps each ReplicaSet's number of active pods at
// spec.replicas.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache, for the recheck before adoption.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock

	expectations *expectations.Expectations
}

// Setup registers the ReplicaSet controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "replicaset-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes pods by controller and watches ReplicaSets and
// their pods.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.expectations = expectations.New(r.Clock)
	if err := controllerref.IndexByControllerUID(context.Background(), mgr.GetFieldIndexer(), &skiffcorev1.Pod{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("replicaset").
		For(&skiffappsv1.ReplicaSet{}).
		Watches(&skiffappsv1.ReplicaSet{}, expectations.OwnerDeletions{Expectations: r.expectations}).
		Watches(&skiffcorev1.Pod{}, r.podEvents()).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: concurrentSyncs,
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
				5*time.Millisecond, maxRetryDelay),
		}).
		Complete(r)
}

// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=replicasets/finalizers,verbs=update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one ReplicaSet: claim its pods, create or delete pods to
// reach spec.replicas when nothing is in flight, then write the status
// that the pods show.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the ReplicaSet. One being deleted belongs to the garbage
	// collector, which removes its pods.
	var rs skiffappsv1.ReplicaSet
	if err := r.Get(ctx, req.NamespacedName, &rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rs.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	selector, ok := controllerref.Selector(r.Recorder, &rs, rs.Spec.Selector)
	if !ok {
		return ctrl.Result{}, nil
	}

	// 2. Decide whether to scale before reading the cache: once the
	// expectations are met, the cache read after holds every pod they
	// waited for.
	mayScale := r.expectations.Satisfied(rs.UID)

	// 3. Claim the pods: adopt matching orphans, release ours that no
	// longer match.
	pods, err := r.listPods(ctx, &rs, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	active, terminating := splitByActivity(pods, rs.UID)
	claimer := &controllerref.Claimer{Client: r.Client, APIReader: r.APIReader, Owner: &rs, Selector: selector}
	owned, err := controllerref.Claim(ctx, claimer, active)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 4. Scale.
	var manageErr error
	if mayScale {
		manageErr = r.manageReplicas(ctx, &rs, owned)
	}

	// 5. Write the status the pods show, and come back when a ready pod
	// becomes available.
	now := r.Clock.Now()
	status := calculateStatus(&rs, owned, terminating, manageErr, now)
	if err := r.writeStatus(ctx, &rs, status); err != nil {
		return ctrl.Result{}, errors.Join(manageErr, err)
	}
	if manageErr != nil {
		return ctrl.Result{}, manageErr
	}
	if wait, ok := nextAvailable(owned, rs.Spec.MinReadySeconds, now); ok {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

// listPods returns the pods in the ReplicaSet's namespace that it may
// claim: those its selector matches, and those it controls (which may no
// longer match, and must then be released).
func (r *Reconciler) listPods(ctx context.Context, rs *skiffappsv1.ReplicaSet, selector labels.Selector) ([]*skiffcorev1.Pod, error) {
	var matching, controlled skiffcorev1.PodList
	if err := r.List(ctx, &matching, client.InNamespace(rs.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods matching %s: %w", selector, err)
	}
	if err := r.List(ctx, &controlled, client.InNamespace(rs.Namespace), controllerref.ControlledBy(rs.UID)); err != nil {
		return nil, fmt.Errorf("listing pods controlled by %s: %w", rs.Name, err)
	}
	seen := map[types.UID]bool{}
	var pods []*skiffcorev1.Pod
	for _, list := range [][]skiffcorev1.Pod{matching.Items, controlled.Items} {
		for i := range list {
			if p := &list[i]; !seen[p.UID] {
				seen[p.UID] = true
				pods = append(pods, p)
			}
		}
	}
	return pods, nil
}

// splitByActivity returns the active pods (the ones that may count
// towards replicas) and how many of the ReplicaSet's own pods are still
// terminating.
func splitByActivity(pods []*skiffcorev1.Pod, owner types.UID) (active []*skiffcorev1.Pod, terminating int) {
	for _, p := range pods {
		switch {
		case podutil.IsActive(p):
			active = append(active, p)
		case podutil.IsTerminating(p) && !podutil.IsTerminal(p) && metav1.IsControlledBy(p, &metav1.ObjectMeta{UID: owner}):
			terminating++
		}
	}
	return active, terminating
}

// manageReplicas creates or deletes pods to bring the owned ones to
// spec.replicas, at most burstReplicas in one sync.
func (r *Reconciler) manageReplicas(ctx context.Context, rs *skiffappsv1.ReplicaSet, owned []*skiffcorev1.Pod) error {
	diff := len(owned) - int(ptr.Deref(rs.Spec.Replicas, 1))
	switch {
	case diff < 0:
		return r.createPods(ctx, rs, min(-diff, burstReplicas))
	case diff > 0:
		return r.deletePods(ctx, rs, podsToDelete(owned, min(diff, burstReplicas)))
	}
	return nil
}

// createPods creates n pods from the template in slow-start batches.
func (r *Reconciler) createPods(ctx context.Context, rs *skiffappsv1.ReplicaSet, n int) error {
	ref, err := controllerref.NewControllerRef(rs, r.Scheme())
	if err != nil {
		return err
	}
	r.expectations.Expect(rs.UID, n, nil)
	created, err := slowStartBatch(n, 1, func() error {
		pod := newPod(rs, ref)
		if err := r.Create(ctx, pod); err != nil {
			r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, reasonFailedCreate, "Create", "Error creating: %v", err)
			return err
		}
		r.Recorder.Eventf(rs, pod, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created pod: %s", pod.Name)
		return nil
	})
	// The creations that failed, or were never tried, will never be
	// observed: stop waiting for them.
	for range n - created {
		r.expectations.CreationObserved(rs.UID)
	}
	if err != nil {
		logf.FromContext(ctx).Info("creating pods failed", "wanted", n, "created", created, "error", err.Error())
		return &replicaFailure{reason: reasonFailedCreate, err: err}
	}
	return nil
}

// deletePods deletes the chosen pods in parallel. A pod with the
// termination finalizer stays, terminating, until its node agent stops it;
// it no longer counts as active, so its replacement is not delayed.
func (r *Reconciler) deletePods(ctx context.Context, rs *skiffappsv1.ReplicaSet, victims []*skiffcorev1.Pod) error {
	uids := make([]types.UID, len(victims))
	for i, p := range victims {
		uids[i] = p.UID
	}
	r.expectations.Expect(rs.UID, 0, uids)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, pod := range victims {
		wg.Go(func() {
			err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
			if err == nil {
				r.Recorder.Eventf(rs, pod, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Deleted pod: %s", pod.Name)
				return
			}
			// This deletion will not be observed (or already was).
			r.expectations.DeletionObserved(rs.UID, pod.UID)
			if apierrors.IsNotFound(err) {
				return
			}
			r.Recorder.Eventf(rs, pod, corev1.EventTypeWarning, reasonFailedDelete, "Delete", "Error deleting: %v", err)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return &replicaFailure{reason: reasonFailedDelete, err: err}
	}
	return nil
}

// writeStatus writes the status when it changed. It is an update, with
// the resourceVersion the status was computed from: a status derived from
// a stale cache is refused rather than written over a newer one.
func (r *Reconciler) writeStatus(ctx context.Context, rs *skiffappsv1.ReplicaSet, status appsv1.ReplicaSetStatus) error {
	if equality.Semantic.DeepEqual(rs.Status, status) {
		return nil
	}
	rs.Status = status
	if err := r.Status().Update(ctx, rs); err != nil {
		return fmt.Errorf("writing the status of %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}
