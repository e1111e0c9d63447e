package cronjob

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	"skiff.dev/skiff/internal/recorder"
	"skiff.dev/skiff/internal/testenv"
)

// timeout is generous: the machine running the suite is shared.
const timeout = 45 * time.Second

// fixture is one test's namespace, fake clock and CronJob controller. No
// Job controller runs: tests finish Jobs by writing their conditions.
type fixture struct {
	t     *testing.T
	ns    string
	clock *clocktesting.FakeClock
	stop  func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cj-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns.Name, clock: clocktesting.NewFakeClock(time.Now())}
	f.start()
	return f
}

// start runs a fresh controller (a restart, after stop) on the fixture's
// clock.
func (f *fixture) start() {
	f.stop = env.StartManager(f.t, func(mgr ctrl.Manager) error {
		r := &Reconciler{
			Client:    mgr.GetClient(),
			APIReader: mgr.GetAPIReader(),
			Recorder:  recorder.New(mgr, "cronjob-controller"),
			Clock:     f.clock,
		}
		return r.SetupWithManager(mgr)
	})
}

// newCronJob creates a CronJob running every minute; change adjusts it
// before creation.
func (f *fixture) newCronJob(name string, change func(*skiffbatchv1.CronJob)) *skiffbatchv1.CronJob {
	f.t.Helper()
	cj := &skiffbatchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
					},
				}},
			},
		},
	}
	if change != nil {
		change(cj)
	}
	if err := env.Client.Create(context.Background(), cj); err != nil {
		f.t.Fatalf("creating CronJob %s: %v", name, err)
	}
	return cj
}

// scheduled returns the n-th scheduled minute after the CronJob's creation.
func scheduled(cj *skiffbatchv1.CronJob, n int) time.Time {
	return cj.CreationTimestamp.Truncate(time.Minute).Add(time.Duration(n) * time.Minute)
}

// at moves the fake clock to t and pokes the CronJob so that it syncs
// now, instead of at the RequeueAfter it asked for in real time.
func (f *fixture) at(cj *skiffbatchv1.CronJob, t time.Time) {
	f.t.Helper()
	f.clock.SetTime(t)
	f.poke(cj)
}

func (f *fixture) poke(cj *skiffbatchv1.CronJob) {
	f.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.skiff.dev/poke":%q}}}`, strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := env.Client.Patch(context.Background(), cj.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		f.t.Fatalf("poking CronJob %s: %v", cj.Name, err)
	}
}

func (f *fixture) get(name string) *skiffbatchv1.CronJob {
	f.t.Helper()
	var cj skiffbatchv1.CronJob
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &cj); err != nil {
		f.t.Fatal(err)
	}
	return &cj
}

// jobNames lists the names of the namespace's Jobs not being deleted.
func (f *fixture) jobNames() []string {
	f.t.Helper()
	var jobs skiffbatchv1.JobList
	if err := env.Client.List(context.Background(), &jobs, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, j := range jobs.Items {
		if j.DeletionTimestamp == nil {
			names = append(names, j.Name)
		}
	}
	sort.Strings(names)
	return names
}

// waitJobs waits until exactly the named Jobs exist.
func (f *fixture) waitJobs(want ...string) {
	f.t.Helper()
	sort.Strings(want)
	testenv.Eventually(f.t, timeout, func() error {
		if got := f.jobNames(); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("jobs %v, want %v", got, want)
		}
		return nil
	})
}

// waitActive waits until status.active names exactly these Jobs.
func (f *fixture) waitActive(cj string, want ...string) {
	f.t.Helper()
	sort.Strings(want)
	testenv.Eventually(f.t, timeout, func() error {
		var got []string
		for _, ref := range f.get(cj).Status.Active {
			got = append(got, ref.Name)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("status.active %v, want %v", got, want)
		}
		return nil
	})
}

// finish marks a Job Complete or Failed as the Job controller would,
// started at start and finished at end.
func (f *fixture) finish(name string, kind batchv1.JobConditionType, start, end time.Time) {
	f.t.Helper()
	ctx := context.Background()
	var job skiffbatchv1.Job
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &job); err != nil {
		f.t.Fatal(err)
	}
	job.Status.StartTime = ptr.To(metav1.NewTime(start))
	job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{
		Type: kind, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(end),
	})
	if kind == batchv1.JobComplete {
		job.Status.CompletionTime = ptr.To(metav1.NewTime(end))
	}
	if err := env.Client.Status().Update(ctx, &job); err != nil {
		f.t.Fatalf("finishing job %s: %v", name, err)
	}
}

// waitEvent waits for an Event with this reason about the CronJob, and
// returns its note.
func (f *fixture) waitEvent(cj, reason string) string {
	f.t.Helper()
	var note string
	testenv.Eventually(f.t, timeout, func() error {
		var events eventsv1.EventList
		if err := env.Client.List(context.Background(), &events, client.InNamespace(f.ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == cj && e.Reason == reason {
				note = e.Note
				return nil
			}
		}
		return fmt.Errorf("no %s Event for CronJob %s among %d events", reason, cj, len(events.Items))
	})
	return note
}

// TestCreatesTheScheduledJob proves the Job of a scheduled time: its
// deterministic name, annotation, labels and controller reference, and the
// CronJob's active list and lastScheduleTime; then lastSuccessfulTime once
// it completes.
func TestCreatesTheScheduledJob(t *testing.T) {
	f := newFixture(t)
	cj := f.newCronJob("tick", nil)
	t1 := scheduled(cj, 1)

	f.at(cj, t1.Add(-time.Second))
	f.at(cj, t1.Add(time.Second))
	name := jobName("tick", t1)
	f.waitJobs(name)
	f.waitActive("tick", name)
	f.waitEvent("tick", "SuccessfulCreate")

	var job skiffbatchv1.Job
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &job); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(&job); ref == nil || ref.UID != cj.UID || ref.Kind != "CronJob" {
		t.Errorf("job controller = %+v, want CronJob tick (%s)", ref, cj.UID)
	}
	if got, err := time.Parse(time.RFC3339, job.Annotations[ScheduledTimestampAnnotation]); err != nil || !got.Equal(t1) {
		t.Errorf("annotation %s = %q, want %s", ScheduledTimestampAnnotation, job.Annotations[ScheduledTimestampAnnotation], t1)
	}
	if job.Labels["app"] != "tick" || job.Spec.Template.Spec.Containers[0].Image != "busybox" {
		t.Errorf("job does not follow the jobTemplate: labels %v, spec %+v", job.Labels, job.Spec.Template.Spec)
	}
	if got := f.get("tick").Status.LastScheduleTime; got == nil || !got.Time.Equal(t1) {
		t.Errorf("lastScheduleTime = %v, want %s", got, t1)
	}

	done := t1.Add(20 * time.Second).Truncate(time.Second)
	f.finish(name, batchv1.JobComplete, t1, done)
	f.waitActive("tick")
	f.waitEvent("tick", "SawCompletedJob")
	testenv.Eventually(t, timeout, func() error {
		if got := f.get("tick").Status.LastSuccessfulTime; got == nil || !got.Time.Equal(done) {
			return fmt.Errorf("lastSuccessfulTime = %v, want %s", got, done)
		}
		return nil
	})
}

// TestRestartDoesNotCreateASecondJob loses the status write of a start
// (status.active and lastScheduleTime cleared) and restarts the
// controller: the deterministic name makes it find its Job instead of
// creating another one for the same time.
func TestRestartDoesNotCreateASecondJob(t *testing.T) {
	f := newFixture(t)
	cj := f.newCronJob("restart", nil)
	t1 := scheduled(cj, 1)
	f.at(cj, t1.Add(time.Second))
	name := jobName("restart", t1)
	f.waitJobs(name)
	f.waitActive("restart", name)

	f.stop()
	lost := f.get("restart")
	lost.Status = batchv1.CronJobStatus{}
	if err := env.Client.Status().Update(context.Background(), lost); err != nil {
		t.Fatal(err)
	}
	f.clock.SetTime(t1.Add(30 * time.Second))
	f.start()
	f.poke(cj)

	f.waitActive("restart", name)
	testenv.Eventually(t, timeout, func() error {
		if got := f.get("restart").Status.LastScheduleTime; got == nil || !got.Time.Equal(t1) {
			return fmt.Errorf("lastScheduleTime = %v, want %s", got, t1)
		}
		return nil
	})
	if got := f.jobNames(); len(got) != 1 || got[0] != name {
		t.Errorf("jobs after restart %v, want only %s", got, name)
	}
}

// TestConcurrencyPolicies starts a second scheduled time while the first
// Job still runs: Allow runs both, Forbid waits for the first to finish
// (then starts the late one), Replace deletes the first.
func TestConcurrencyPolicies(t *testing.T) {
	f := newFixture(t)
	policies := []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}
	cjs := map[batchv1.ConcurrencyPolicy]*skiffbatchv1.CronJob{}
	for _, p := range policies {
		cjs[p] = f.newCronJob(fmt.Sprintf("policy-%s", map[batchv1.ConcurrencyPolicy]string{
			batchv1.AllowConcurrent: "allow", batchv1.ForbidConcurrent: "forbid", batchv1.ReplaceConcurrent: "replace"}[p]),
			func(cj *skiffbatchv1.CronJob) { cj.Spec.ConcurrencyPolicy = p })
	}
	// All three were created within a few seconds; use the latest creation
	// so that the first tick is after every one of them.
	ref := cjs[batchv1.ReplaceConcurrent]
	for _, cj := range cjs {
		if cj.CreationTimestamp.After(ref.CreationTimestamp.Time) {
			ref = cj
		}
	}
	t1, t2 := scheduled(ref, 1), scheduled(ref, 2)
	first := map[batchv1.ConcurrencyPolicy]string{}
	f.clock.SetTime(t1.Add(time.Second))
	for _, p := range policies {
		f.poke(cjs[p])
		first[p] = jobName(cjs[p].Name, t1)
	}
	f.waitJobs(first[policies[0]], first[policies[1]], first[policies[2]])

	f.clock.SetTime(t2.Add(time.Second))
	for _, p := range policies {
		f.poke(cjs[p])
	}
	allow, forbid, replace := cjs[batchv1.AllowConcurrent].Name, cjs[batchv1.ForbidConcurrent].Name, cjs[batchv1.ReplaceConcurrent].Name
	f.waitActive(allow, jobName(allow, t1), jobName(allow, t2))
	f.waitActive(replace, jobName(replace, t2))
	f.waitEvent(forbid, "JobAlreadyActive")
	f.waitEvent(replace, "SuccessfulDelete")
	f.waitJobs(jobName(allow, t1), jobName(allow, t2), jobName(forbid, t1), jobName(replace, t2))
	f.waitActive(forbid, jobName(forbid, t1))

	// Forbid starts the missed time late, once the running Job finished.
	f.finish(jobName(forbid, t1), batchv1.JobComplete, t1, t2.Add(2*time.Second))
	f.waitActive(forbid, jobName(forbid, t2))
}

// TestSuspend starts nothing while suspended, and the missed time once
// resumed (no startingDeadlineSeconds).
func TestSuspend(t *testing.T) {
	f := newFixture(t)
	cj := f.newCronJob("sleepy", func(cj *skiffbatchv1.CronJob) { cj.Spec.Suspend = ptr.To(true) })
	t1 := scheduled(cj, 1)
	f.at(cj, t1.Add(time.Second))
	// A sibling that is not suspended proves the controller synced by then.
	witness := f.newCronJob("awake", nil)
	f.at(witness, scheduled(witness, 1).Add(time.Second))
	f.clock.SetTime(t1.Add(time.Second))
	f.poke(cj)
	f.poke(witness)
	testenv.Eventually(t, timeout, func() error {
		if len(f.get("awake").Status.Active) == 0 {
			return fmt.Errorf("the witness CronJob has not started its Job yet")
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	for _, name := range f.jobNames() {
		if name == jobName("sleepy", t1) {
			t.Fatalf("suspended CronJob started job %s", name)
		}
	}

	if err := env.Client.Patch(context.Background(), cj.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"suspend":false}}`))); err != nil {
		t.Fatal(err)
	}
	f.waitActive("sleepy", jobName("sleepy", t1))
}

// TestHistoryLimits keeps the newest successfulJobsHistoryLimit Complete
// and failedJobsHistoryLimit Failed Jobs and deletes the older ones.
func TestHistoryLimits(t *testing.T) {
	f := newFixture(t)
	cj := f.newCronJob("history", func(cj *skiffbatchv1.CronJob) {
		cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](1)
		cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1)
	})
	var names []string
	for n := 1; n <= 4; n++ {
		tn := scheduled(cj, n)
		f.at(cj, tn.Add(time.Second))
		names = append(names, jobName("history", tn))
		f.waitJobs(names...)
	}
	f.finish(names[0], batchv1.JobComplete, scheduled(cj, 1), scheduled(cj, 1).Add(10*time.Second))
	f.finish(names[1], batchv1.JobComplete, scheduled(cj, 2), scheduled(cj, 2).Add(10*time.Second))
	f.finish(names[2], batchv1.JobFailed, scheduled(cj, 3), scheduled(cj, 3).Add(10*time.Second))
	f.finish(names[3], batchv1.JobFailed, scheduled(cj, 4), scheduled(cj, 4).Add(10*time.Second))
	f.waitJobs(names[1], names[3])
	f.waitActive("history")
	f.waitEvent("history", "SuccessfulDelete")
	if got := f.get("history").Status.LastSuccessfulTime; got == nil || !got.Time.Equal(scheduled(cj, 2).Add(10*time.Second)) {
		t.Errorf("lastSuccessfulTime = %v, want the newer completion %s", got, scheduled(cj, 2).Add(10*time.Second))
	}
}

// TestStartingDeadline: a start past startingDeadlineSeconds is reported
// as MissSchedule and not run.
func TestStartingDeadline(t *testing.T) {
	f := newFixture(t)
	late := f.newCronJob("late", func(cj *skiffbatchv1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To[int64](10) })
	f.at(late, scheduled(late, 1).Add(30*time.Second))
	f.waitEvent("late", "MissSchedule")
	if got := f.jobNames(); len(got) != 0 {
		t.Errorf("jobs %v after a missed deadline, want none", got)
	}

}

// TestTooManyMissedStarts: a controller that was away for more than 100
// starts warns TooManyMissedTimes and runs only the latest one.
func TestTooManyMissedStarts(t *testing.T) {
	f := newFixture(t)
	away := f.newCronJob("away", nil)
	latest := scheduled(away, 150)
	f.at(away, latest.Add(5*time.Second))
	// Upstream's words, which users search for.
	if note, want := f.waitEvent("away", "TooManyMissedTimes"),
		"too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"; note != want {
		t.Errorf("TooManyMissedTimes says %q, want %q", note, want)
	}
	f.waitActive("away", jobName("away", latest))
	f.waitJobs(jobName("away", latest))
}

// TestTimeZoneAndBadSchedule: a Job's scheduled-timestamp annotation is
// written in spec.timeZone; what the API lets through but cannot run is
// reported with upstream's Warning and starts nothing: a schedule the
// parser refuses (a backwards range) as UnparseableSchedule, one no date
// matches (February 30) as InvalidSchedule, a zone missing from the tz
// database as UnknownTimeZone.
func TestTimeZoneAndBadSchedule(t *testing.T) {
	f := newFixture(t)
	tokyo := f.newCronJob("tokyo", func(cj *skiffbatchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Asia/Tokyo") })
	t1 := scheduled(tokyo, 1)
	f.at(tokyo, t1.Add(time.Second))
	name := jobName("tokyo", t1)
	f.waitActive("tokyo", name)
	var job skiffbatchv1.Job
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &job); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := job.Annotations[ScheduledTimestampAnnotation], t1.In(loc).Format(time.RFC3339); got != want {
		t.Errorf("annotation %s = %q, want %q (Tokyo time)", ScheduledTimestampAnnotation, got, want)
	}

	for _, tc := range []struct {
		name, reason string
		change       func(*skiffbatchv1.CronJob)
	}{
		{"backwards", "UnparseableSchedule", func(cj *skiffbatchv1.CronJob) { cj.Spec.Schedule = "30-10 * * * *" }},
		{"february-30", "InvalidSchedule", func(cj *skiffbatchv1.CronJob) { cj.Spec.Schedule = "0 0 30 2 *" }},
		{"mars", "UnknownTimeZone", func(cj *skiffbatchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus_Mons") }},
	} {
		bad := f.newCronJob(tc.name, tc.change)
		f.at(bad, scheduled(bad, 90))
		f.waitEvent(tc.name, tc.reason)
		if got := f.get(tc.name).Status; len(got.Active) != 0 || got.LastScheduleTime != nil {
			t.Errorf("%s: status %+v, want empty", tc.name, got)
		}
	}
}
