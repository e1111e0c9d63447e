// Package job runs pods to completion: completions, parallelism, backoff,
// deadlines, indexed completion, and upstream's failure and success
// policies.
package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/recorder"
)

// concurrentSyncs is upstream's --concurrent-job-syncs default.
const concurrentSyncs = 5

// burstCreations caps the pods one sync creates, as upstream's
// MaxPodCreateDeletePerSync.
const burstCreations = 500

// Reconciler runs each Job's pods until enough of them succeed, or the
// Job fails.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache, for the recheck before adoption;
	// nil means the manager's.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.Clock
	// BackoffBase and BackoffMax shape the delay before a failed pod is
	// replaced; zero means upstream's 10s and 6min.
	BackoffBase, BackoffMax time.Duration

	expectations *expectations
	backoffs     *backoffs
}

// Setup registers the Job controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "job-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes pods by controller and watches Jobs and their
// pods.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.BackoffBase == 0 {
		r.BackoffBase = defaultBackoffBase
	}
	if r.BackoffMax == 0 {
		r.BackoffMax = defaultBackoffMax
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	r.expectations = newExpectations(r.Clock)
	r.backoffs = newBackoffs(r.BackoffBase, r.BackoffMax)
	if err := controllerref.IndexByControllerUID(context.Background(), mgr.GetFieldIndexer(), &skiffcorev1.Pod{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("job").
		For(&skiffbatchv1.Job{}).
		Watches(&skiffbatchv1.Job{}, jobDeletions{r}).
		Watches(&skiffcorev1.Pod{}, podEvents{r}).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrentSyncs}).
		Complete(r)
}

// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one Job: count its finished pods, decide whether it has
// succeeded or failed, create or delete pods, and write the status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the Job. Once it is gone or going, its pods only need their
	// tracking finalizers removed, or they would never be deleted.
	var job skiffbatchv1.Job
	if err := r.Get(ctx, req.NamespacedName, &job); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.releaseOrphans(ctx, req.NamespacedName)
	}
	pods, err := r.listPods(ctx, &job)
	if err != nil {
		return ctrl.Result{}, err
	}
	if job.DeletionTimestamp != nil {
		return ctrl.Result{}, r.releaseAll(ctx, &job, pods)
	}
	// Whether the Job was already finishing as read: only then are its pods
	// deleted (step 6). A sync that decides the outcome writes it first, so
	// that a later sync can never read a Job without it once its pods are
	// going, and create their replacements.
	finishingAsRead := finishingCondition(&job.Status) != nil
	if isFinished(&job.Status) {
		if err := r.releaseAll(ctx, &job, pods); err != nil {
			return ctrl.Result{}, err
		}
		return r.cleanUpFinished(ctx, &job)
	}
	// Claim the pods: adopt the orphans the selector matches, release ours
	// that no longer match.
	selector, err := podSelector(&job)
	if err != nil {
		// Retrying cannot help: the Job waits for an edit.
		r.Recorder.Eventf(&job, nil, corev1.EventTypeWarning, "InvalidSelector", "Sync", "Invalid selector: %v", err)
		return ctrl.Result{}, nil
	}
	if pods, err = r.claimPods(ctx, &job, selector, pods); err != nil {
		return ctrl.Result{}, err
	}

	now := r.Clock.Now()
	status := job.Status.DeepCopy()
	completions := int(ptr.Deref(job.Spec.Completions, 0))
	indexed := ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion) == batchv1.IndexedCompletion

	// 2. Count the finished pods, in two steps: record them as uncounted
	// and write that; only then remove their finalizers and count them.
	finishing := finishingCondition(status) != nil
	failing := findCondition(status, batchv1.JobFailureTarget) != nil
	release, failJob := recordFinished(status, pods, r.expectations.pendingReleases(job.UID), failing, indexed, completions, job.Spec.PodFailurePolicy, job.Spec.BackoffLimitPerIndex)
	if failJob != "" && !finishing {
		setCondition(status, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonPodFailurePolicy, failJob, metav1.NewTime(now))
		finishing = true
	}
	if err := r.writeStatus(ctx, &job, status); err != nil {
		return ctrl.Result{}, err
	}
	status = job.Status.DeepCopy()
	if status.UncountedTerminatedPods == nil {
		status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	released, releaseErr := r.removeFinalizers(ctx, &job, release)
	held := map[types.UID]bool{}
	for _, p := range pods {
		if hasTrackingFinalizer(p) && !released[p.UID] {
			held[p.UID] = true
		}
	}
	succeededBefore := status.Succeeded
	if n := countReleased(status, func(uid types.UID) bool { return held[uid] }); n > 0 {
		r.backoffs.failed(job.UID, n, now)
	}
	if status.Succeeded > succeededBefore {
		r.backoffs.succeeded(job.UID)
	}

	// 3. Tally the pods.
	var active, terminating []*skiffcorev1.Pod
	var ready int32
	for _, p := range pods {
		switch {
		case podutil.IsActive(p):
			active = append(active, p)
			if podutil.IsReady(p) {
				ready++
			}
		case p.DeletionTimestamp != nil && !podutil.IsTerminal(p):
			terminating = append(terminating, p)
		}
	}
	succeeded := int(status.Succeeded) + len(status.UncountedTerminatedPods.Succeeded)
	failed := int(status.Failed) + len(status.UncountedTerminatedPods.Failed)
	completed := parseIndexes(status.CompletedIndexes, completions)
	failedIndexes := parseIndexes(ptr.Deref(status.FailedIndexes, ""), completions)

	// 4. Suspend or resume.
	nowMeta := metav1.NewTime(now)
	suspended := ptr.Deref(job.Spec.Suspend, false)
	// The Events of what this sync changes are recorded once its status
	// is written, as upstream's: a sync that loses a conflict says nothing.
	var events []jobEvent
	if suspended && !finishing {
		if setCondition(status, batchv1.JobSuspended, corev1.ConditionTrue, reasonSuspended, "Job suspended", nowMeta) {
			events = append(events, jobEvent{corev1.EventTypeNormal, "Suspended", "Job suspended"})
		}
		status.StartTime = nil
	} else if findCondition(status, batchv1.JobSuspended) != nil {
		setCondition(status, batchv1.JobSuspended, corev1.ConditionFalse, reasonResumed, "Job resumed", nowMeta)
		events = append(events, jobEvent{corev1.EventTypeNormal, "Resumed", "Job resumed"})
	}
	if !suspended && status.StartTime == nil {
		status.StartTime = &nowMeta
	}

	// 5. Decide the outcome, once: an interim condition first, the
	// terminal one when no pod is left to count.
	var requeue time.Duration
	if !finishing {
		switch {
		case job.Spec.BackoffLimitPerIndex == nil && (failed > int(ptr.Deref(job.Spec.BackoffLimit, 6)) || restartsExceedBackoffLimit(&job.Spec, active)):
			setCondition(status, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonBackoffLimitExceeded, "Job has reached the specified backoff limit", nowMeta)
		case job.Spec.MaxFailedIndexes != nil && len(failedIndexes) > int(*job.Spec.MaxFailedIndexes):
			setCondition(status, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes", nowMeta)
		case len(failedIndexes) > 0 && len(failedIndexes)+len(completed) >= completions && len(active) == 0:
			setCondition(status, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonFailedIndexes, "Job has failed indexes", nowMeta)
		case deadlineLeft(&job, status, now) == 0:
			setCondition(status, batchv1.JobFailureTarget, corev1.ConditionTrue, reasonDeadlineExceeded, "Job was active longer than specified deadline", nowMeta)
		case indexed && successPolicyMatched(&job, completed, completions, status, nowMeta):
		case successReached(&job, succeeded, len(active), completed, indexed):
			setCondition(status, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonCompletionsReached, "Reached expected number of succeeded pods", nowMeta)
		default:
			if d := deadlineLeft(&job, status, now); d > 0 {
				requeue = d
			}
		}
	}

	// 6. Create or delete pods.
	var manageErr error
	if target := finishingCondition(status); target != nil {
		if finishingAsRead {
			manageErr = r.deletePods(ctx, &job, active)
			active = nil
		}
		switch {
		case len(active) > 0:
			// The outcome is written below; the next sync, which reads
			// it, deletes the pods.
			requeue = time.Millisecond
		case len(terminating) == 0 && len(held) == 0 && len(release) == 0 && noneUncounted(status):
			finish(status, target, nowMeta)
			events = append(events, finishedEvent(target))
		default:
			requeue = time.Second // wait for the last pods' finalizers
		}
	} else if suspended {
		manageErr = r.deletePods(ctx, &job, active)
		active = nil
	} else if r.expectations.mayCreate(job.UID) {
		if wait := r.backoffs.wait(job.UID, now); wait > 0 {
			requeue = minPositive(requeue, wait)
		} else {
			manageErr = r.manage(ctx, &job, pods, active, terminating, succeeded, completed, failedIndexes, indexed, completions)
		}
	}

	// 7. Write the status the pods show.
	status.Active = int32(len(active))
	status.Ready = ptr.To(ready)
	status.Terminating = ptr.To(int32(len(terminating)))
	if err := r.writeStatus(ctx, &job, status); err != nil {
		return ctrl.Result{}, errors.Join(releaseErr, manageErr, err)
	}
	for _, e := range events {
		r.Recorder.Eventf(&job, nil, e.eventtype, e.reason, "Sync", "%s", e.note)
	}
	if err := errors.Join(releaseErr, manageErr); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// listPods returns the pods the Job controls.
func (r *Reconciler) listPods(ctx context.Context, job *skiffbatchv1.Job) ([]*skiffcorev1.Pod, error) {
	var list skiffcorev1.PodList
	if err := r.List(ctx, &list, client.InNamespace(job.Namespace), controllerref.ControlledBy(job.UID)); err != nil {
		return nil, fmt.Errorf("listing the pods of job %s: %w", job.Name, err)
	}
	pods := make([]*skiffcorev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// manage creates or deletes pods so that the Job runs as many as it still
// needs, at most parallelism. Under podReplacementPolicy Failed, the
// terminating pods still hold their places (and, Indexed, their indexes):
// their replacements wait until they are gone.
func (r *Reconciler) manage(ctx context.Context, job *skiffbatchv1.Job, pods, active, terminating []*skiffcorev1.Pod, succeeded int, completed, failedIndexes indexSet, indexed bool, completions int) error {
	parallelism := int(ptr.Deref(job.Spec.Parallelism, 1))
	occupying := active
	if onlyReplaceFailed(&job.Spec) {
		occupying = slices.Concat(active, terminating)
	}
	if indexed {
		done := indexSet{}
		for i := range completed {
			done[i] = true
		}
		for i := range failedIndexes {
			done[i] = true
		}
		return r.createPods(ctx, job, missingIndexes(occupying, done, completions, parallelism), failuresByIndex(pods, completions))
	}
	want := wantActive(job.Spec.Completions, parallelism, succeeded, len(active))
	switch {
	case len(occupying) < want:
		n := min(want-len(occupying), burstCreations)
		return r.createPods(ctx, job, slices.Repeat([]int{-1}, n), nil)
	case len(active) > want:
		// The newest pods have done the least work.
		victims := slices.Clone(active)
		slices.SortFunc(victims, func(a, b *skiffcorev1.Pod) int {
			return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
		})
		return r.deletePods(ctx, job, victims[:len(active)-want])
	}
	return nil
}

// failuresByIndex returns, per index, how often it has failed: one more
// than the failure count its latest failed pod carried.
func failuresByIndex(pods []*skiffcorev1.Pod, completions int) map[int]int {
	out := map[int]int{}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodFailed {
			continue
		}
		if i := completionIndex(p, completions); i >= 0 {
			out[i] = max(out[i], indexFailures(p)+1)
		}
	}
	return out
}

// wantActive is how many pods a NonIndexed Job should run: parallelism,
// but no more than the completions still missing. Without completions,
// the first success ends the Job: no new pod starts after it.
func wantActive(completions *int32, parallelism, succeeded, active int) int {
	if completions == nil {
		if succeeded > 0 {
			return min(active, parallelism)
		}
		return parallelism
	}
	return max(min(parallelism, int(*completions)-succeeded), 0)
}

// missingIndexes returns the lowest indexes that neither succeeded nor run
// (or hold their place while terminating), as many as parallelism leaves
// room for.
func missingIndexes(occupying []*skiffcorev1.Pod, completed indexSet, completions, parallelism int) []int {
	running := map[int]bool{}
	for _, p := range occupying {
		if i := completionIndex(p, completions); i >= 0 {
			running[i] = true
		}
	}
	room := min(parallelism-len(occupying), burstCreations)
	var out []int
	for i := 0; i < completions && len(out) < room; i++ {
		if !completed[i] && !running[i] {
			out = append(out, i)
		}
	}
	return out
}

// successPolicyMatched sets SuccessCriteriaMet when a successPolicy rule
// is satisfied, and reports whether it did.
func successPolicyMatched(job *skiffbatchv1.Job, completed indexSet, completions int, status *batchv1.JobStatus, now metav1.Time) bool {
	msg, ok := matchSuccessPolicy(job.Spec.SuccessPolicy, completed, completions)
	if ok {
		setCondition(status, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, reasonSuccessPolicy, msg, now)
	}
	return ok
}

// successReached reports whether the Job has succeeded: every index done
// (Indexed), completions pods succeeded, or, without completions, one pod
// succeeded and none is left running.
func successReached(job *skiffbatchv1.Job, succeeded, active int, completed indexSet, indexed bool) bool {
	switch {
	case indexed:
		return len(completed) >= int(ptr.Deref(job.Spec.Completions, 0))
	case job.Spec.Completions == nil:
		return succeeded > 0 && active == 0
	default:
		return succeeded >= int(*job.Spec.Completions)
	}
}

// deadlineLeft returns how long the Job may still run under
// activeDeadlineSeconds: -1 without a deadline (or a start), 0 once it has
// passed.
func deadlineLeft(job *skiffbatchv1.Job, status *batchv1.JobStatus, now time.Time) time.Duration {
	if job.Spec.ActiveDeadlineSeconds == nil || status.StartTime == nil || ptr.Deref(job.Spec.Suspend, false) {
		return -1
	}
	end := status.StartTime.Add(time.Duration(*job.Spec.ActiveDeadlineSeconds) * time.Second)
	return max(end.Sub(now), 0)
}

// finish turns the interim condition into the terminal one, put first
// among the conditions: kubectl's STATUS column for a Job is the type of
// its first True condition (the apiserver prints the first result of a
// custom resource's column JSONPath), and a finished Job must show
// Complete or Failed there, as upstream's printer does, rather than the
// SuccessCriteriaMet or FailureTarget that came before.
func finish(status *batchv1.JobStatus, target *batchv1.JobCondition, now metav1.Time) {
	terminal, reason, message := batchv1.JobComplete, "", ""
	if target.Type == batchv1.JobFailureTarget {
		terminal, reason, message = batchv1.JobFailed, target.Reason, target.Message
	} else if status.CompletionTime == nil {
		status.CompletionTime = &now
	}
	setCondition(status, terminal, corev1.ConditionTrue, reason, message, now)
	moveConditionFirst(status, terminal)
}

// jobEvent is an Event about the Job, recorded after its status is
// written.
type jobEvent struct{ eventtype, reason, note string }

// finishedEvent tells that the Job finished as target decided: Completed,
// or a warning with the reason and message of its failure, as upstream.
func finishedEvent(target *batchv1.JobCondition) jobEvent {
	if target.Type == batchv1.JobFailureTarget {
		return jobEvent{corev1.EventTypeWarning, target.Reason, target.Message}
	}
	return jobEvent{corev1.EventTypeNormal, "Completed", "Job completed"}
}

func noneUncounted(status *batchv1.JobStatus) bool {
	u := status.UncountedTerminatedPods
	return u == nil || len(u.Succeeded)+len(u.Failed) == 0
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 {
		return b
	}
	return min(a, b)
}

// createPods creates one pod per entry of indexes (-1: NonIndexed).
// failures gives, per index, how often it failed so far (for
// backoffLimitPerIndex).
func (r *Reconciler) createPods(ctx context.Context, job *skiffbatchv1.Job, indexes []int, failures map[int]int) error {
	if len(indexes) == 0 {
		return nil
	}
	if err := r.confirmCurrent(ctx, job); err != nil {
		return err
	}
	ref, err := controllerref.NewControllerRef(job, r.Scheme())
	if err != nil {
		return err
	}
	r.expectations.expectCreations(job.UID, len(indexes))
	var errs []error
	for _, idx := range indexes {
		pod := newPod(job, ref, idx)
		if job.Spec.BackoffLimitPerIndex != nil && idx >= 0 {
			pod.Annotations[annotationIndexFailures] = strconv.Itoa(failures[idx])
		}
		if err := r.Create(ctx, pod); err != nil {
			r.expectations.creationObserved(job.UID)
			r.Recorder.Eventf(job, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Error creating: %v", err)
			errs = append(errs, err)
			continue
		}
		r.Recorder.Eventf(job, pod, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created pod: %s", pod.Name)
	}
	return errors.Join(errs...)
}

// confirmCurrent checks, against the apiserver, that the Job this sync
// computed from is the current one, before it creates pods. A sync reads
// the Job and its pods from two caches that lag independently: the pod
// cache can already show the pod whose finalizer the last sync removed,
// once it had counted the pod, while the Job cache does not show that
// count yet. From such a Job the pod's index is neither completed nor
// running (or its success is missing from succeeded), and the pod is no
// longer for recordFinished to count: the sync would create a pod the Job
// does not need, and its status write would fail on the resourceVersion
// only after the creation. The Job's update event brings the sync back
// once the cache has caught up.
func (r *Reconciler) confirmCurrent(ctx context.Context, job *skiffbatchv1.Job) error {
	var live skiffbatchv1.Job
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), &live); err != nil {
		return fmt.Errorf("rereading job %s/%s before creating pods: %w", job.Namespace, job.Name, err)
	}
	if live.ResourceVersion != job.ResourceVersion {
		return fmt.Errorf("job %s/%s changed since it was read (resourceVersion %s, now %s): %w",
			job.Namespace, job.Name, job.ResourceVersion, live.ResourceVersion, errStaleJob)
	}
	return nil
}

// errStaleJob is a sync's refusal to create pods for a Job its cache
// shows behind the apiserver.
var errStaleJob = errors.New("the cached Job is stale; no pods created")

// deletePods deletes the pods. Their tracking finalizers are removed by a
// later sync, once their deletion shows in the cache.
func (r *Reconciler) deletePods(ctx context.Context, job *skiffbatchv1.Job, pods []*skiffcorev1.Pod) error {
	var errs []error
	for _, p := range pods {
		err := r.Delete(ctx, p, client.Preconditions{UID: &p.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			r.Recorder.Eventf(job, p, corev1.EventTypeWarning, "FailedDelete", "Delete", "Error deleting: %v", err)
			errs = append(errs, err)
			continue
		}
		if err == nil {
			r.Recorder.Eventf(job, p, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Deleted pod: %s", p.Name)
		}
	}
	return errors.Join(errs...)
}

// removeFinalizers removes the tracking finalizer from the pods and
// returns those now free of it (or gone).
func (r *Reconciler) removeFinalizers(ctx context.Context, job *skiffbatchv1.Job, pods []*skiffcorev1.Pod) (map[types.UID]bool, error) {
	done := map[types.UID]bool{}
	var errs []error
	for _, p := range pods {
		r.expectations.expectRelease(job.UID, p.UID)
		if err := removeFinalizer(ctx, r.Client, p); err != nil {
			r.expectations.releaseObserved(job.UID, p.UID)
			errs = append(errs, err)
			continue
		}
		done[p.UID] = true
	}
	return done, errors.Join(errs...)
}

// removeFinalizer patches the pod's finalizers without the tracking one,
// on the resourceVersion it read: a merge patch replaces the whole list.
func removeFinalizer(ctx context.Context, c client.Client, p *skiffcorev1.Pod) error {
	cp := p.DeepCopy()
	controllerutil.RemoveFinalizer(cp, trackingFinalizer)
	err := c.Patch(ctx, cp, client.MergeFromWithOptions(p, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// releaseAll removes the tracking finalizer from every pod of a finished
// or deleted Job: there is nothing left to count.
func (r *Reconciler) releaseAll(ctx context.Context, job *skiffbatchv1.Job, pods []*skiffcorev1.Pod) error {
	var errs []error
	for _, p := range pods {
		if hasTrackingFinalizer(p) {
			errs = append(errs, removeFinalizer(ctx, r.Client, p))
		}
	}
	return errors.Join(errs...)
}

// releaseOrphans removes the tracking finalizer from the pods of a Job
// that no longer exists, found by their controller reference. Its UID is
// gone with it, and pods it adopted lack its job-name label, so the
// namespace's pods are scanned (in the cache).
func (r *Reconciler) releaseOrphans(ctx context.Context, key types.NamespacedName) error {
	var list skiffcorev1.PodList
	if err := r.List(ctx, &list, client.InNamespace(key.Namespace)); err != nil {
		return err
	}
	var errs []error
	for i := range list.Items {
		p := &list.Items[i]
		if ref := jobOf(p); ref != nil && ref.Name == key.Name && hasTrackingFinalizer(p) {
			errs = append(errs, removeFinalizer(ctx, r.Client, p))
		}
	}
	return errors.Join(errs...)
}

// writeStatus writes the status when it changed, as an update on the
// resourceVersion it was computed from: a status computed from a stale
// cache is refused, so that no pod is counted twice.
func (r *Reconciler) writeStatus(ctx context.Context, job *skiffbatchv1.Job, status *batchv1.JobStatus) error {
	if equality.Semantic.DeepEqual(&job.Status, status) {
		return nil
	}
	job.Status = *status.DeepCopy()
	if err := r.Status().Update(ctx, job); err != nil {
		return fmt.Errorf("writing the status of job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return nil
}

// cleanUpFinished deletes a finished Job once ttlSecondsAfterFinished has
// passed since it finished, as upstream's TTL-after-finished controller.
// The deletion propagates in the background: the garbage collector removes
// the pods after the Job.
func (r *Reconciler) cleanUpFinished(ctx context.Context, job *skiffbatchv1.Job) (ctrl.Result, error) {
	wait, ok := ttlLeft(job, r.Clock.Now())
	if !ok {
		return ctrl.Result{}, nil
	}
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &job.UID, ResourceVersion: &job.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("deleting finished job %s/%s: %w", job.Namespace, job.Name, err)
	}
	return ctrl.Result{}, nil
}

// ttlLeft returns how long a finished Job still lives under
// ttlSecondsAfterFinished, and false when it has no such limit. The
// resourceVersion precondition of the deletion makes sure the TTL read is
// the one deleted on: a Job whose TTL was just extended survives.
func ttlLeft(job *skiffbatchv1.Job, now time.Time) (time.Duration, bool) {
	if job.Spec.TTLSecondsAfterFinished == nil {
		return 0, false
	}
	c := findCondition(&job.Status, batchv1.JobComplete)
	if c == nil {
		c = findCondition(&job.Status, batchv1.JobFailed)
	}
	if c == nil {
		return 0, false
	}
	finished := c.LastTransitionTime.Time
	if job.Status.CompletionTime != nil {
		finished = job.Status.CompletionTime.Time
	}
	end := finished.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	return max(end.Sub(now), 0), true
}
