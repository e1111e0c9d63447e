// Package statefulset runs pods with stable names, hostnames and storage,
// created and removed in order.
package statefulset

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/expectations"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/recorder"
)

// Reconciler keeps each StatefulSet's ordinals start..start+replicas-1
// filled with one pod each, named after the set and the ordinal.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache: the adoption recheck, and a
	// revision whose name is taken.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock

	// expectations hold a set's pod creations and deletions until the
	// cache shows them, so that a stale read never repeats one.
	expectations *expectations.Expectations
}

// Setup registers the StatefulSet controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "statefulset-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes pods and revisions by controller and watches
// StatefulSets and what they control.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.expectations = expectations.New(r.Clock)
	ctx := context.Background()
	if err := controllerref.IndexByControllerUID(ctx, mgr.GetFieldIndexer(), &skiffcorev1.Pod{}); err != nil {
		return err
	}
	if err := controllerref.IndexByControllerUID(ctx, mgr.GetFieldIndexer(), &appsv1.ControllerRevision{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("statefulset").
		For(&skiffappsv1.StatefulSet{}).
		Watches(&skiffappsv1.StatefulSet{}, expectations.OwnerDeletions{Expectations: r.expectations}).
		Watches(&skiffcorev1.Pod{}, r.podEvents()).
		Owns(&appsv1.ControllerRevision{}).
		Complete(r)
}

// +kubebuilder:rbac:groups=apps.skiff.dev,resources=statefulsets,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=statefulsets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps.skiff.dev,resources=statefulsets/finalizers,verbs=update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one StatefulSet: find its revisions, claim its pods,
// take the next step of the plan, then write the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the set. One being deleted belongs to the garbage collector.
	var set skiffappsv1.StatefulSet
	if err := r.Get(ctx, req.NamespacedName, &set); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if set.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	set = *set.DeepCopy()
	selector, ok := controllerref.Selector(r.Recorder, &set, set.Spec.Selector)
	if !ok {
		return ctrl.Result{}, nil
	}

	// 2. The revisions: the update revision holds the template now; the
	// current one the template the set last fully rolled out.
	revs, err := r.revisions(ctx, &set)
	if err != nil {
		return ctrl.Result{}, err
	}
	update, err := r.updateRevision(ctx, &set, revs)
	if errors.Is(err, errCollision) {
		// The bumped collision count was written: that write wakes the
		// set again, to try the next name.
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	current := update
	for _, rev := range revs {
		if rev.Name == set.Status.CurrentRevision {
			current = rev
		}
	}
	currentTemplate, err := decodeTemplate(current)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 3. Decide whether to act before reading the cache: once the
	// expectations are met, the cache read after holds every pod they
	// waited for.
	mayAct := r.expectations.Satisfied(set.UID)

	// 4. Claim the pods, and index them by ordinal.
	pods, err := r.claimPods(ctx, &set, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	byOrdinal := podsByOrdinal(&set, pods)

	// 5. Keep the claims' ownerReferences as the retention policy says,
	// then take the next step.
	now := r.Clock.Now()
	replicas := int(ptr.Deref(set.Spec.Replicas, 1))
	var syncErr error
	if mayAct {
		syncErr = r.syncClaimOwners(ctx, &set, byOrdinal, replicas)
	}
	if mayAct && syncErr == nil {
		var in planInput
		in, syncErr = newPlanInput(&set, byOrdinal, update.Name, now)
		if syncErr == nil {
			syncErr = r.apply(ctx, &set, decide(in), byOrdinal, current, currentTemplate, update)
		}
	}

	// 6. The status, then the revision history beyond the limit.
	status := calculateStatus(&set, byOrdinal, current.Name, update.Name, now)
	if syncErr == nil {
		syncErr = r.truncateHistory(ctx, &set, revs, liveRevisions(byOrdinal, status))
	}
	if err := r.writeStatus(ctx, &set, status); err != nil {
		return ctrl.Result{}, errors.Join(syncErr, err)
	}
	if syncErr != nil {
		return ctrl.Result{}, syncErr
	}
	// 7. A pod becoming available changes no object: wake up for it.
	if wait, ok := nextAvailable(byOrdinal, set.Spec.MinReadySeconds, now); ok {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, nil
}

// newPlanInput describes the set and its pods to the planner.
func newPlanInput(set *skiffappsv1.StatefulSet, pods map[int]*skiffcorev1.Pod, updateRevision string, now time.Time) (planInput, error) {
	replicas := int(ptr.Deref(set.Spec.Replicas, 1))
	maxUnavailable, err := maxUnavailableOf(set.Spec.UpdateStrategy, replicas)
	if err != nil {
		return planInput{}, fmt.Errorf("spec.updateStrategy.rollingUpdate.maxUnavailable: %w", err)
	}
	in := planInput{
		start:          startOrdinal(set),
		replicas:       replicas,
		parallel:       set.Spec.PodManagementPolicy == appsv1.ParallelPodManagement,
		onDelete:       set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType,
		partition:      partitionOf(set.Spec.UpdateStrategy),
		maxUnavailable: maxUnavailable,
		slots:          make(map[int]slot, len(pods)),
	}
	for i, p := range pods {
		in.slots[i] = slot{
			state:   stateOf(p, set.Spec.MinReadySeconds, now),
			updated: p.Labels[appsv1.ControllerRevisionHashLabelKey] == updateRevision,
		}
	}
	return in, nil
}

// startOrdinal is the set's first ordinal, spec.ordinals.start (0 when
// unset). Upstream's validation refuses a negative start; the CRD has no
// such rule, so one counts as 0 here.
func startOrdinal(set *skiffappsv1.StatefulSet) int {
	if set.Spec.Ordinals == nil {
		return 0
	}
	return max(int(set.Spec.Ordinals.Start), 0)
}

// liveRevisions returns the revisions still in use: the current and
// update ones, and those of existing pods.
func liveRevisions(pods map[int]*skiffcorev1.Pod, status appsv1.StatefulSetStatus) map[string]bool {
	live := map[string]bool{status.CurrentRevision: true, status.UpdateRevision: true}
	for _, p := range pods {
		live[p.Labels[appsv1.ControllerRevisionHashLabelKey]] = true
	}
	return live
}

// claimPods returns the set's pods after adopting matching orphans and
// releasing its pods that no longer match.
func (r *Reconciler) claimPods(ctx context.Context, set *skiffappsv1.StatefulSet, selector labels.Selector) ([]*skiffcorev1.Pod, error) {
	var matching, controlled skiffcorev1.PodList
	if err := r.List(ctx, &matching, client.InNamespace(set.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods matching %s: %w", selector, err)
	}
	if err := r.List(ctx, &controlled, client.InNamespace(set.Namespace), controllerref.ControlledBy(set.UID)); err != nil {
		return nil, fmt.Errorf("listing pods controlled by %s: %w", set.Name, err)
	}
	seen := map[string]bool{}
	var pods []*skiffcorev1.Pod
	for _, list := range [][]skiffcorev1.Pod{matching.Items, controlled.Items} {
		for i := range list {
			// Only pods named after an ordinal of this set may be its own.
			p := &list[i]
			if _, ok := ordinalOf(set, p.Name); ok && !seen[p.Name] {
				seen[p.Name] = true
				pods = append(pods, p)
			}
		}
	}
	claimer := &controllerref.Claimer{Client: r.Client, APIReader: r.APIReader, Owner: set, Selector: selector}
	return controllerref.Claim(ctx, claimer, pods)
}

// ordinalOf returns the ordinal a pod name stands for in the set.
func ordinalOf(set *skiffappsv1.StatefulSet, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, set.Name+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}

func podsByOrdinal(set *skiffappsv1.StatefulSet, pods []*skiffcorev1.Pod) map[int]*skiffcorev1.Pod {
	out := make(map[int]*skiffcorev1.Pod, len(pods))
	for _, p := range pods {
		if i, ok := ordinalOf(set, p.Name); ok {
			out[i] = p
		}
	}
	return out
}

// stateOf tells the planner where a pod stands. Available means Running
// and Ready for minReadySeconds, as upstream.
func stateOf(p *skiffcorev1.Pod, minReadySeconds int32, now time.Time) slotState {
	switch {
	case p.DeletionTimestamp != nil:
		return terminating
	case podutil.IsTerminal(p):
		return finished
	case p.Status.Phase != corev1.PodRunning || !podutil.IsReady(p):
		return starting
	case !podutil.IsAvailable(p, minReadySeconds, now):
		return ready
	}
	return available
}

// apply carries the plan out: the claims and pods to create, the pods to
// delete. It expects every creation and deletion first, and stops
// expecting those that fail, since the cache will never show them.
func (r *Reconciler) apply(ctx context.Context, set *skiffappsv1.StatefulSet, p plan, pods map[int]*skiffcorev1.Pod,
	current *appsv1.ControllerRevision, currentTemplate *corev1.PodTemplateSpec, update *appsv1.ControllerRevision) error {
	deletions := make([]types.UID, len(p.delete))
	for j, i := range p.delete {
		deletions[j] = pods[i].UID
	}
	r.expectations.Expect(set.UID, len(p.create), deletions)

	var errs []error
	// The wanted ordinals below the partition stay at the current
	// revision.
	partition := startOrdinal(set) + partitionOf(set.Spec.UpdateStrategy)
	for _, i := range p.create {
		rev, template := update, &set.Spec.Template
		if set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && i < partition {
			rev, template = current, currentTemplate
		}
		if created, err := r.createPod(ctx, set, i, rev.Name, template); !created {
			r.expectations.CreationObserved(set.UID)
			errs = append(errs, err)
		}
	}
	for _, i := range p.delete {
		if deleted, err := r.deletePod(ctx, set, pods[i]); !deleted {
			r.expectations.DeletionObserved(set.UID, pods[i].UID)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// createPod creates the claims of an ordinal, then its pod. It reports
// whether it created the pod; a pod that already exists (the cache was
// stale) is not an error.
func (r *Reconciler) createPod(ctx context.Context, set *skiffappsv1.StatefulSet, ordinal int, revision string, template *corev1.PodTemplateSpec) (bool, error) {
	name := podName(set, ordinal)
	if err := r.createClaims(ctx, set, ordinal); err != nil {
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Create Pod %s in StatefulSet %s failed error: %v", name, set.Name, err)
		return false, err
	}
	ref, err := controllerref.NewControllerRef(set, r.Scheme())
	if err != nil {
		return false, err
	}
	pod := newPod(set, ordinal, revision, template, ref)
	if err := r.Create(ctx, pod); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Create Pod %s in StatefulSet %s failed error: %v", name, set.Name, err)
		return false, err
	}
	r.Recorder.Eventf(set, pod, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Create Pod %s in StatefulSet %s successful", name, set.Name)
	return true, nil
}

// deletePod deletes one pod, only if it is still the one the plan saw. It
// reports whether the deletion was made; a pod already gone or replaced is
// not an error.
func (r *Reconciler) deletePod(ctx context.Context, set *skiffappsv1.StatefulSet, pod *skiffcorev1.Pod) (bool, error) {
	err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		r.Recorder.Eventf(set, pod, corev1.EventTypeWarning, "FailedDelete", "Delete", "Delete Pod %s in StatefulSet %s failed error: %v", pod.Name, set.Name, err)
		return false, err
	}
	r.Recorder.Eventf(set, pod, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Delete Pod %s in StatefulSet %s successful", pod.Name, set.Name)
	return true, nil
}

func podName(set *skiffappsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d", set.Name, ordinal)
}

// newPod returns the pod of one ordinal: the template with the stable
// name, hostname and subdomain, the identity labels, and one volume per
// claim template.
func newPod(set *skiffappsv1.StatefulSet, ordinal int, revision string, template *corev1.PodTemplateSpec, ref *metav1.OwnerReference) *skiffcorev1.Pod {
	t := template.DeepCopy()
	name := podName(set, ordinal)
	pod := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       set.Namespace,
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Spec: t.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revision
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, claim := range set.Spec.VolumeClaimTemplates {
		vol := corev1.Volume{Name: claim.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(set, &claim, ordinal)},
		}}
		// A claim replaces a template volume of the same name.
		replaced := false
		for j := range pod.Spec.Volumes {
			if pod.Spec.Volumes[j].Name == claim.Name {
				pod.Spec.Volumes[j], replaced = vol, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, vol)
		}
	}
	return pod
}

// nextAvailable returns how long until the next ready pod becomes
// available, when one is waiting for minReadySeconds.
func nextAvailable(pods map[int]*skiffcorev1.Pod, minReadySeconds int32, now time.Time) (time.Duration, bool) {
	if minReadySeconds <= 0 {
		return 0, false
	}
	var soonest time.Duration
	found := false
	for _, p := range pods {
		if !podutil.IsActive(p) || !podutil.IsReady(p) || podutil.IsAvailable(p, minReadySeconds, now) {
			continue
		}
		c := podutil.Condition(&p.Status, corev1.PodReady)
		wait := c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Sub(now) + time.Second
		if !found || wait < soonest {
			soonest, found = wait, true
		}
	}
	return soonest, found
}
