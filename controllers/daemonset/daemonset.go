// Package daemonset runs one pod on every eligible node, as upstream's
// DaemonSet controller: eligibility follows the nodeSelector, the required
// node affinity and the taints (with the automatic daemon tolerations);
// pods are placed by the scheduler through a metadata.name node affinity;
// pods follow nodes as they join and leave, and a RollingUpdate replaces
// out-of-date pods within maxUnavailable. A failed pod is replaced after a
// per-node back-off, and a ControllerRevision name taken by another
// template raises status.collisionCount.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/expectations"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/recorder"
)

// concurrentSyncs is upstream's --concurrent-daemonset-syncs default.
const concurrentSyncs = 2

// maxRetryDelay caps the back-off after failed syncs, so that a DaemonSet
// whose pods are refused recovers soon after the cause is removed.
const maxRetryDelay = 30 * time.Second

// Reconciler keeps one pod of each DaemonSet on every eligible node.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache, for the recheck before adoption.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock

	expectations *expectations.Expectations
	backoff      *failedPodBackoff
}

// Setup registers the DaemonSet controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "daemonset-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes pods and revisions by controller and watches
// DaemonSets, their pods and every node.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.expectations = expectations.New(r.Clock)
	r.backoff = newFailedPodBackoff()
	ctx := context.Background()
	if err := controllerref.IndexByControllerUID(ctx, mgr.GetFieldIndexer(), &skiffcorev1.Pod{}); err != nil {
		return err
	}
	if err := controllerref.IndexByControllerUID(ctx, mgr.GetFieldIndexer(), &appsv1.ControllerRevision{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("daemonset").
		For(&skiffappsv1.DaemonSet{}).
		Watches(&skiffappsv1.DaemonSet{}, expectations.OwnerDeletions{Expectations: r.expectations}).
		Watches(&skiffcorev1.Pod{}, r.podEvents()).
		Watches(&skiffcorev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allDaemonSets), builder.WithPredicates(nodeChanged)).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: concurrentSyncs,
			RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
				5*time.Millisecond, maxRetryDelay),
		}).
		Complete(r)
}

// +kubebuilder:rbac:groups=apps.skiff.dev,resources=daemonsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=daemonsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=daemonsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one DaemonSet: claim its pods, record its template
// revision, create and delete pods so that each eligible node runs one
// (and roll out a new template), then write the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the DaemonSet. One being deleted belongs to the garbage
	// collector.
	var ds skiffappsv1.DaemonSet
	if err := r.Get(ctx, req.NamespacedName, &ds); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ds.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	selector, ok := controllerref.Selector(r.Recorder, &ds, ds.Spec.Selector)
	if !ok {
		return ctrl.Result{}, nil
	}

	// 2. Decide whether to change pods before reading the cache: once the
	// expectations are met, the reads below see every pod they waited for.
	mayManage := r.expectations.Satisfied(ds.UID)

	// 3. Read the nodes and claim the pods.
	var nodeList skiffcorev1.NodeList
	if err := r.List(ctx, &nodeList); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing nodes: %w", err)
	}
	nodes := make([]*skiffcorev1.Node, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
	}
	pods, err := r.claimPods(ctx, &ds, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	byNode, nowhere := groupByNode(pods)

	// 4. Record the template's revision; its hash labels the new pods.
	hash, err := r.ensureRevision(ctx, &ds)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 5. Create and delete pods; a failed pod is killed only once its node
	// is out of back-off.
	spec := daemonPodSpec(&ds)
	now := r.Clock.Now()
	var manageErr error
	var backoffWait time.Duration
	if mayManage {
		u := updateContext{ds: &ds, spec: spec, nodes: nodes, byNode: byNode, hash: hash, now: now}
		keep := keepOldest
		if u.surging() {
			keep = u.keepDuringSurge
		}
		p := placement(spec, nodes, byNode, nowhere, keep)
		createOn, victims := rollingUpdate(u)
		p.createOn = append(p.createOn, createOn...)
		p.remove = append(p.remove, victims...)
		var kill []*skiffcorev1.Pod
		kill, backoffWait = r.killableFailedPods(&ds, p.failed, now)
		p.remove = append(p.remove, kill...)
		manageErr = r.apply(ctx, &ds, spec, hash, p)
	}

	// 6. Trim the revision history once nothing is in flight.
	if manageErr == nil && mayManage {
		manageErr = r.cleanupHistory(ctx, &ds, hash, pods)
	}

	// 7. Write the status, and come back when a ready pod becomes
	// available or a node's back-off ends.
	status := calculateStatus(&ds, spec, nodes, byNode, hash, now)
	if err := r.writeStatus(ctx, &ds, status); err != nil {
		return ctrl.Result{}, errors.Join(manageErr, err)
	}
	if manageErr != nil {
		return ctrl.Result{}, manageErr
	}
	wait, ok := nextAvailable(byNode, ds.Spec.MinReadySeconds, now)
	if backoffWait > 0 && (!ok || backoffWait < wait) {
		wait = backoffWait
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// killableFailedPods returns the failed pods whose node is out of
// back-off, announcing each kill with upstream's Warning, and how long
// until the first node still in back-off leaves it (0 if none is).
func (r *Reconciler) killableFailedPods(ds *skiffappsv1.DaemonSet, failed []*skiffcorev1.Pod, now time.Time) (kill []*skiffcorev1.Pod, wait time.Duration) {
	for _, pod := range failed {
		node := targetNode(pod)
		if w := r.backoff.tryKill(backoffKey(ds, node), now); w > 0 {
			if wait == 0 || w < wait {
				wait = w
			}
			continue
		}
		r.Recorder.Eventf(ds, pod, corev1.EventTypeWarning, "FailedDaemonPod", "Delete",
			"Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node)
		kill = append(kill, pod)
	}
	return kill, wait
}

// nextAvailable returns how long until the first ready pod that is not
// yet available becomes so: no pod event marks that moment, and both the
// status and a surge rollout wait for it.
func nextAvailable(byNode map[string][]*skiffcorev1.Pod, minReadySeconds int32, now time.Time) (time.Duration, bool) {
	if minReadySeconds == 0 {
		return 0, false
	}
	var soonest time.Duration
	found := false
	for _, pods := range byNode {
		for _, p := range pods {
			c := podutil.Condition(&p.Status, corev1.PodReady)
			if c == nil || c.Status != corev1.ConditionTrue || podutil.IsAvailable(p, minReadySeconds, now) {
				continue
			}
			// A second more: availability needs the time strictly after.
			wait := c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Sub(now) + time.Second
			if !found || wait < soonest {
				soonest, found = max(wait, time.Second), true
			}
		}
	}
	return soonest, found
}

// claimPods returns the DaemonSet's pods, after adopting matching orphans
// and releasing its pods that no longer match. As upstream, a pod being
// deleted is kept while it has not finished: its node still runs it, so
// it counts in the status and holds the node until it is gone.
func (r *Reconciler) claimPods(ctx context.Context, ds *skiffappsv1.DaemonSet, selector labels.Selector) ([]*skiffcorev1.Pod, error) {
	var matching, controlled skiffcorev1.PodList
	if err := r.List(ctx, &matching, client.InNamespace(ds.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods matching %s: %w", selector, err)
	}
	if err := r.List(ctx, &controlled, client.InNamespace(ds.Namespace), controllerref.ControlledBy(ds.UID)); err != nil {
		return nil, fmt.Errorf("listing pods controlled by %s: %w", ds.Name, err)
	}
	seen := map[types.UID]bool{}
	var candidates []*skiffcorev1.Pod
	for _, list := range [][]skiffcorev1.Pod{matching.Items, controlled.Items} {
		for i := range list {
			p := &list[i]
			if !seen[p.UID] && !(podutil.IsTerminating(p) && podutil.IsTerminal(p)) {
				seen[p.UID] = true
				candidates = append(candidates, p)
			}
		}
	}
	claimer := &controllerref.Claimer{Client: r.Client, APIReader: r.APIReader, Owner: ds, Selector: selector}
	return controllerref.Claim(ctx, claimer, candidates)
}

// apply carries out a plan, creations and deletions in parallel.
func (r *Reconciler) apply(ctx context.Context, ds *skiffappsv1.DaemonSet, spec *corev1.PodSpec, hash string, p plan) error {
	p.remove = dedupe(p.remove)
	slices.Sort(p.createOn)
	p.createOn = slices.Compact(p.createOn)
	if len(p.createOn) == 0 && len(p.remove) == 0 {
		return nil
	}
	ref, err := controllerref.NewControllerRef(ds, r.Scheme())
	if err != nil {
		return err
	}
	uids := make([]types.UID, len(p.remove))
	for i, pod := range p.remove {
		uids[i] = pod.UID
	}
	r.expectations.Expect(ds.UID, len(p.createOn), uids)

	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, node := range p.createOn {
		wg.Go(func() {
			pod := newPod(ds, ref, spec, hash, node)
			if err := r.Create(ctx, pod); err != nil {
				// This creation will never be observed.
				r.expectations.CreationObserved(ds.UID)
				r.Recorder.Eventf(ds, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Error creating: %v", err)
				fail(err)
				return
			}
			r.Recorder.Eventf(ds, pod, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created pod: %s", pod.Name)
		})
	}
	for _, pod := range p.remove {
		wg.Go(func() {
			err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
			if err == nil {
				r.Recorder.Eventf(ds, pod, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Deleted pod: %s", pod.Name)
				return
			}
			r.expectations.DeletionObserved(ds.UID, pod.UID)
			if apierrors.IsNotFound(err) {
				return
			}
			r.Recorder.Eventf(ds, pod, corev1.EventTypeWarning, "FailedDelete", "Delete", "Error deleting: %v", err)
			fail(err)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func dedupe(pods []*skiffcorev1.Pod) []*skiffcorev1.Pod {
	seen := map[types.UID]bool{}
	out := pods[:0:0]
	for _, p := range pods {
		if !seen[p.UID] {
			seen[p.UID] = true
			out = append(out, p)
		}
	}
	return out
}

// newPod builds the daemon pod for node: the template, labelled with the
// revision hash, with the daemon tolerations and a node affinity that
// only node satisfies. The scheduler binds it.
func newPod(ds *skiffappsv1.DaemonSet, ref *metav1.OwnerReference, spec *corev1.PodSpec, hash, node string) *skiffcorev1.Pod {
	t := ds.Spec.Template.DeepCopy()
	labels := map[string]string{}
	for k, v := range t.Labels {
		labels[k] = v
	}
	labels[appsv1.ControllerRevisionHashLabelKey] = hash
	pod := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Namespace:       ds.Namespace,
			Labels:          labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Spec: *spec.DeepCopy(),
	}
	pod.Spec.Affinity = withNodeAffinity(pod.Spec.Affinity, node)
	return pod
}

// writeStatus writes the status when it changed, as an update with the
// resourceVersion it was computed from.
func (r *Reconciler) writeStatus(ctx context.Context, ds *skiffappsv1.DaemonSet, status appsv1.DaemonSetStatus) error {
	if equality.Semantic.DeepEqual(ds.Status, status) {
		return nil
	}
	ds.Status = status
	if err := r.Status().Update(ctx, ds); err != nil {
		return fmt.Errorf("writing the status of %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	return nil
}

// allDaemonSets maps a node event to every DaemonSet: a node that joins,
// leaves, or changes labels or taints may change where each runs.
func (r *Reconciler) allDaemonSets(ctx context.Context, _ client.Object) []reconcile.Request {
	var list skiffappsv1.DaemonSetList
	if err := r.List(ctx, &list); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}
