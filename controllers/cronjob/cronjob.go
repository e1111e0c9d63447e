// Package cronjob creates Jobs on a cron schedule, as upstream's CronJob
// controller (v2): one Job per scheduled time with a deterministic name,
// concurrency policies, a starting deadline, suspension and history limits.
package cronjob

import (
	"context"
	"fmt"
	"sort"
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
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/recorder"
)

// ScheduledTimestampAnnotation records on each Job the scheduled time it
// was created for, as upstream.
const ScheduledTimestampAnnotation = "batch.kubernetes.io/cronjob-scheduled-timestamp"

// Upstream's history limit defaults, applied when the fields are unset.
const (
	defaultSuccessfulJobsHistoryLimit = 3
	defaultFailedJobsHistoryLimit     = 1
)

// Reconciler starts each CronJob's Jobs at their scheduled times.
type Reconciler struct {
	client.Client
	// APIReader reads without the cache, to tell a Job that is really gone
	// from one the cache has not seen yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Clock is injected so that tests step time instead of waiting.
	Clock clock.PassiveClock
}

// Setup registers the CronJob controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "cronjob-controller"),
		Clock:     clock.RealClock{},
	}
	return r.SetupWithManager(mgr)
}

// SetupWithManager indexes Jobs by controller and watches CronJobs and the
// Jobs they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := controllerref.IndexByControllerUID(context.Background(), mgr.GetFieldIndexer(), &skiffbatchv1.Job{}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("cronjob").
		For(&skiffbatchv1.CronJob{}).
		Owns(&skiffbatchv1.Job{}).
		Complete(r)
}

// +kubebuilder:rbac:groups=batch.skiff.dev,resources=cronjobs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=cronjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=cronjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch.skiff.dev,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one CronJob: bring status.active in line with its Jobs,
// clean up old finished Jobs, then start the Job for the most recent due
// time if the policies allow, and come back at the next scheduled time.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the CronJob. One being deleted is left to the garbage
	// collector, which deletes its Jobs.
	var stored skiffbatchv1.CronJob
	if err := r.Get(ctx, req.NamespacedName, &stored); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if stored.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	cj := stored.DeepCopy()
	now := r.Clock.Now()

	// 2. List the Jobs it controls and update status.active and
	// lastSuccessfulTime from them.
	var list skiffbatchv1.JobList
	if err := r.List(ctx, &list, client.InNamespace(cj.Namespace), controllerref.ControlledBy(cj.UID)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.syncActive(ctx, cj, list.Items); err != nil {
		return ctrl.Result{}, err
	}

	// 3. Delete finished Jobs beyond the history limits.
	r.cleanupHistory(ctx, cj, list.Items)

	// 4. Start the Job that is due, if any, and find when to come back.
	requeue, err := r.startDue(ctx, cj, list.Items, now)
	if err != nil {
		return ctrl.Result{}, err
	}

	// 5. Write the status only when it changed.
	if !equality.Semantic.DeepEqual(stored.Status, cj.Status) {
		if err := r.Status().Update(ctx, cj); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// syncActive makes status.active list exactly the unfinished Jobs the
// CronJob controls, and moves lastSuccessfulTime up to the latest
// completion.
func (r *Reconciler) syncActive(ctx context.Context, cj *skiffbatchv1.CronJob, jobs []skiffbatchv1.Job) error {
	byUID := make(map[string]*skiffbatchv1.Job, len(jobs))
	for i := range jobs {
		job := &jobs[i]
		byUID[string(job.UID)] = job
		finished, _ := finishedType(job)
		switch {
		case !finished && !inActive(cj, job):
			// A Job we created but whose status write was lost: it is
			// active all the same, unless the cache still holds a Job that
			// this controller just deleted (Replace, history cleanup).
			exists, err := r.stillExists(ctx, job)
			if err != nil {
				return err
			}
			if exists {
				cj.Status.Active = append(cj.Status.Active, reference(job))
			}
		case finished && inActive(cj, job):
			removeActive(cj, job.UID)
			r.Recorder.Eventf(cj, job, corev1.EventTypeNormal, "SawCompletedJob", "Sync",
				"Saw completed job: %s, condition: %s", job.Name, finishedCondition(job))
		}
		if completed := job.Status.CompletionTime; completed != nil && isComplete(job) {
			if cj.Status.LastSuccessfulTime == nil || cj.Status.LastSuccessfulTime.Before(completed) {
				cj.Status.LastSuccessfulTime = completed.DeepCopy()
			}
		}
	}
	// An active entry whose Job is not in the cache may be a Job the cache
	// has not seen yet; only the API can tell that it is gone.
	kept := cj.Status.Active[:0]
	for _, ref := range cj.Status.Active {
		if byUID[string(ref.UID)] != nil {
			kept = append(kept, ref)
			continue
		}
		var job skiffbatchv1.Job
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: cj.Namespace, Name: ref.Name}, &job)
		switch {
		case apierrors.IsNotFound(err) || (err == nil && job.UID != ref.UID):
			r.Recorder.Eventf(cj, nil, corev1.EventTypeNormal, "MissingJob", "Sync", "Active job went missing: %v", ref.Name)
		case err != nil:
			return err
		default:
			kept = append(kept, ref)
		}
	}
	cj.Status.Active = kept
	return nil
}

// stillExists reads a Job without the cache: it exists, with this UID,
// and is not being deleted.
func (r *Reconciler) stillExists(ctx context.Context, job *skiffbatchv1.Job) (bool, error) {
	var current skiffbatchv1.Job
	err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), &current)
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return current.UID == job.UID && current.DeletionTimestamp == nil, nil
}

// cleanupHistory deletes the oldest finished Jobs beyond
// successfulJobsHistoryLimit and failedJobsHistoryLimit. A failed delete is
// logged and retried at the next sync, as upstream: history is best effort.
func (r *Reconciler) cleanupHistory(ctx context.Context, cj *skiffbatchv1.CronJob, jobs []skiffbatchv1.Job) {
	var succeeded, failed []*skiffbatchv1.Job
	for i := range jobs {
		job := &jobs[i]
		if job.DeletionTimestamp != nil {
			continue
		}
		switch finished, kind := finishedType(job); {
		case !finished:
		case kind == batchv1.JobComplete:
			succeeded = append(succeeded, job)
		default:
			failed = append(failed, job)
		}
	}
	r.deleteOldest(ctx, cj, succeeded, ptr.Deref(cj.Spec.SuccessfulJobsHistoryLimit, defaultSuccessfulJobsHistoryLimit))
	r.deleteOldest(ctx, cj, failed, ptr.Deref(cj.Spec.FailedJobsHistoryLimit, defaultFailedJobsHistoryLimit))
}

// deleteOldest deletes all but the newest limit of jobs, oldest first by
// start time (creation time for a Job never started), as upstream.
func (r *Reconciler) deleteOldest(ctx context.Context, cj *skiffbatchv1.CronJob, jobs []*skiffbatchv1.Job, limit int32) {
	if int32(len(jobs)) <= limit {
		return
	}
	sort.SliceStable(jobs, func(i, j int) bool { return startTime(jobs[i]).Before(startTime(jobs[j])) })
	for _, job := range jobs[:len(jobs)-int(limit)] {
		r.deleteJob(ctx, cj, job)
	}
}

// startDue creates the Job for the most recent due scheduled time when the
// CronJob's policies allow it, and returns how long to wait until the next
// scheduled time (0: do not requeue).
func (r *Reconciler) startDue(ctx context.Context, cj *skiffbatchv1.CronJob, jobs []skiffbatchv1.Job, now time.Time) (time.Duration, error) {
	if ptr.Deref(cj.Spec.Suspend, false) {
		// Resuming is a spec update, which triggers a sync.
		return 0, nil
	}
	sched, reason, err := parseSchedule(cj.Spec)
	if err != nil {
		// The API validates both fields; only a range such as 30-10 or a zone
		// missing from this machine's tz database gets here. Nothing but an
		// edit fixes it, and an edit triggers a sync.
		r.Recorder.Eventf(cj, nil, corev1.EventTypeWarning, reason, "Sync", "%v", err)
		return 0, nil
	}
	next := requeueAfter(sched, now)
	if next == 0 {
		// robfig/cron finds no time within five years: a day that no
		// month has, such as February 30. Only an edit fixes it.
		r.Recorder.Eventf(cj, nil, corev1.EventTypeWarning, "InvalidSchedule", "Sync",
			"invalid schedule: %q: no date matches it (a day of the month that the month never has?)", cj.Spec.Schedule)
		return 0, nil
	}
	// Counting from the deadline keeps a CronJob that was stopped for long
	// from warning about starts it would not make anyway, as upstream.
	due := missedStarts(sched, earliestTime(cj.ObjectMeta, cj.Spec, cj.Status, now, true), now)
	if due.TooMany {
		r.Recorder.Eventf(cj, nil, corev1.EventTypeWarning, "TooManyMissedTimes", "Sync",
			"too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
	}
	if due.MostRecent == nil {
		r.reportMissed(cj, sched, now)
		return next, nil
	}
	scheduled := *due.MostRecent
	name := jobName(cj.Name, scheduled)
	if hasJobNamed(jobs, name) {
		// Already started (the status write may have been lost): a
		// deterministic name makes this check exact.
		cj.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
		return next, nil
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(cj.Status.Active) > 0 {
			// Upstream leaves lastScheduleTime alone, so this start happens
			// late, once the running Job finishes, unless its deadline passed.
			r.Recorder.Eventf(cj, nil, corev1.EventTypeNormal, "JobAlreadyActive", "Sync",
				"Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, ref := range append([]corev1.ObjectReference(nil), cj.Status.Active...) {
			job := &skiffbatchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: cj.Namespace, Name: ref.Name, UID: ref.UID}}
			if !r.deleteJob(ctx, cj, job) {
				return 0, fmt.Errorf("replacing active job %s", ref.Name)
			}
			removeActive(cj, ref.UID)
		}
	}
	if err := r.createJob(ctx, cj, name, scheduled); err != nil {
		return 0, err
	}
	return next, nil
}

// reportMissed sends a MissSchedule Event when a scheduled time since the
// last schedule passed its startingDeadlineSeconds without a start (the
// controller was down or a sync came late). lastScheduleTime is left alone,
// as upstream, so the next scheduled time starts normally.
func (r *Reconciler) reportMissed(cj *skiffbatchv1.CronJob, sched schedule, now time.Time) {
	if cj.Spec.StartingDeadlineSeconds == nil {
		return
	}
	all := missedStarts(sched, earliestTime(cj.ObjectMeta, cj.Spec, cj.Status, now, false), now)
	if all.MostRecent != nil && tooLate(cj.Spec, *all.MostRecent, now) {
		r.Recorder.Eventf(cj, nil, corev1.EventTypeWarning, "MissSchedule", "Sync",
			"Missed scheduled time to start a job: %s", all.MostRecent.UTC().Format(time.RFC1123Z))
	}
}

// createJob creates the Job for scheduled and records it in the status.
func (r *Reconciler) createJob(ctx context.Context, cj *skiffbatchv1.CronJob, name string, scheduled time.Time) error {
	job, err := r.jobFor(cj, name, scheduled)
	if err != nil {
		return err
	}
	err = r.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// The cache lags: read the Job we (or an earlier run) created.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		if ref := metav1.GetControllerOfNoCopy(job); ref == nil || ref.UID != cj.UID {
			r.Recorder.Eventf(cj, job, corev1.EventTypeWarning, "FailedCreate", "Create",
				"Error creating job: %s already exists and is not controlled by this CronJob", name)
			return nil
		}
	} else if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// The namespace and this CronJob are going away: nothing to
		// report, as upstream.
		return err
	} else if err != nil {
		r.Recorder.Eventf(cj, nil, corev1.EventTypeWarning, "FailedCreate", "Create", "Error creating job: %v", err)
		return err
	} else {
		r.Recorder.Eventf(cj, job, corev1.EventTypeNormal, "SuccessfulCreate", "Create", "Created job %v", job.Name)
	}
	if finished, _ := finishedType(job); !finished && !inActive(cj, job) {
		cj.Status.Active = append(cj.Status.Active, reference(job))
	}
	cj.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
	return nil
}

// jobFor builds the Job of one scheduled time from spec.jobTemplate.
func (r *Reconciler) jobFor(cj *skiffbatchv1.CronJob, name string, scheduled time.Time) (*skiffbatchv1.Job, error) {
	ref, err := controllerref.NewControllerRef(cj, r.Scheme())
	if err != nil {
		return nil, err
	}
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	annotations := tmpl.Annotations
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[ScheduledTimestampAnnotation] = scheduledTimestamp(cj.Spec, scheduled)
	return &skiffbatchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       cj.Namespace,
			Name:            name,
			Labels:          tmpl.Labels,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*ref},
		},
		Spec: tmpl.Spec,
	}, nil
}

// deleteJob deletes a Job in the background (its pods follow through the
// garbage collector) and reports whether it is gone.
func (r *Reconciler) deleteJob(ctx context.Context, cj *skiffbatchv1.CronJob, job *skiffbatchv1.Job) bool {
	opts := []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationBackground)}
	if job.UID != "" {
		opts = append(opts, client.Preconditions{UID: &job.UID})
	}
	err := r.Delete(ctx, job, opts...)
	switch {
	case err == nil:
		r.Recorder.Eventf(cj, job, corev1.EventTypeNormal, "SuccessfulDelete", "Delete", "Deleted job %v", job.Name)
		return true
	case apierrors.IsNotFound(err):
		return true
	default:
		logf.FromContext(ctx).Error(err, "deleting job", "job", job.Name)
		r.Recorder.Eventf(cj, job, corev1.EventTypeWarning, "FailedDelete", "Delete", "Deleted job: %v", err)
		return false
	}
}

// finishedType reports whether a Job has finished, and how: its Complete
// or Failed condition is True.
func finishedType(job *skiffbatchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

// finishedCondition names how a finished Job ended, for Events.
func finishedCondition(job *skiffbatchv1.Job) batchv1.JobConditionType {
	_, kind := finishedType(job)
	return kind
}

func isComplete(job *skiffbatchv1.Job) bool {
	return finishedCondition(job) == batchv1.JobComplete
}

// startTime orders Jobs for history cleanup.
func startTime(job *skiffbatchv1.Job) time.Time {
	if job.Status.StartTime != nil {
		return job.Status.StartTime.Time
	}
	return job.CreationTimestamp.Time
}

func reference(job *skiffbatchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion:      skiffbatchv1.GroupVersion.String(),
		Kind:            "Job",
		Namespace:       job.Namespace,
		Name:            job.Name,
		UID:             job.UID,
		ResourceVersion: job.ResourceVersion,
	}
}

func inActive(cj *skiffbatchv1.CronJob, job *skiffbatchv1.Job) bool {
	for _, ref := range cj.Status.Active {
		if ref.UID == job.UID {
			return true
		}
	}
	return false
}

func removeActive(cj *skiffbatchv1.CronJob, uid types.UID) {
	kept := cj.Status.Active[:0]
	for _, ref := range cj.Status.Active {
		if ref.UID != uid {
			kept = append(kept, ref)
		}
	}
	cj.Status.Active = kept
}

func hasJobNamed(jobs []skiffbatchv1.Job, name string) bool {
	for i := range jobs {
		if jobs[i].Name == name {
			return true
		}
	}
	return false
}
