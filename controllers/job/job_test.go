package job

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/recorder"
	"skiff.dev/skiff/internal/testenv"
)

const timeout = 60 * time.Second

var nsCounter atomic.Int32

// startController runs the Job controller with a fast back-off. The tests
// bind no pods: they play the node agent by writing pod phases directly.
func startController(t *testing.T) (stop func()) {
	t.Helper()
	return startControllerWithBackoff(t, 50*time.Millisecond)
}

// startControllerWithBackoff runs the Job controller with this back-off
// base (and a cap of four times it).
func startControllerWithBackoff(t *testing.T, base time.Duration) (stop func()) {
	t.Helper()
	return env.StartManager(t, func(m ctrl.Manager) error {
		r := &Reconciler{
			Client:      m.GetClient(),
			Recorder:    recorder.New(m, "job-controller"),
			Clock:       clock.RealClock{},
			BackoffBase: base,
			BackoffMax:  4 * base,
		}
		return r.SetupWithManager(m)
	})
}

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("job-%d-%d", time.Now().UnixNano()%100000, nsCounter.Add(1))}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func createJob(t *testing.T, ns, name string, mutate func(*batchv1.JobSpec)) *skiffbatchv1.Job {
	t.Helper()
	job := &skiffbatchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	if mutate != nil {
		mutate(&job.Spec)
	}
	if err := env.Client.Create(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	return job
}

func getJob(t *testing.T, job *skiffbatchv1.Job) *skiffbatchv1.Job {
	t.Helper()
	return fetch(t, job, &skiffbatchv1.Job{})
}

// fetch reads obj's current state from the API into the empty into.
func fetch[T client.Object](t *testing.T, obj, into T) T {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), into); err != nil {
		t.Fatal(err)
	}
	return into
}

// podsOf lists the job's pods straight from the API.
func podsOf(t *testing.T, job *skiffbatchv1.Job) []skiffcorev1.Pod {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(job.Namespace), client.MatchingLabels{labelControllerUID: string(job.UID)}); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func running(pods []skiffcorev1.Pod) []skiffcorev1.Pod {
	var out []skiffcorev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// finishPod writes the phase a node agent would write when the pod's
// container exits.
func finishPod(t *testing.T, p *skiffcorev1.Pod, phase corev1.PodPhase) {
	t.Helper()
	exit := int32(0)
	if phase == corev1.PodFailed {
		exit = 1
	}
	p = p.DeepCopy()
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Reason: "Completed"}},
	}}
	if err := env.Client.Status().Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an Event of the type and reason about the job, and
// checks its note.
func waitEvent(t *testing.T, job *skiffbatchv1.Job, eventtype, reason, note string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(job.Namespace)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Job" && e.Regarding.Name == job.Name && e.Reason == reason {
				if e.Type != eventtype || e.Note != note {
					t.Fatalf("%s Event is %s %q, want %s %q", reason, e.Type, e.Note, eventtype, note)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s Event about job %s among %d", reason, job.Name, len(list.Items))
	})
}

// waitCondition waits for the job's condition of type ct to be True and
// returns the job.
func waitCondition(t *testing.T, job *skiffbatchv1.Job, ct batchv1.JobConditionType) *skiffbatchv1.Job {
	t.Helper()
	var got *skiffbatchv1.Job
	testenv.Eventually(t, timeout, func() error {
		got = getJob(t, job)
		if findCondition(&got.Status, ct) == nil {
			return fmt.Errorf("no %s condition yet: %+v", ct, got.Status)
		}
		return nil
	})
	return got
}

func conditionReason(job *skiffbatchv1.Job, ct batchv1.JobConditionType) string {
	if c := findCondition(&job.Status, ct); c != nil {
		return c.Reason
	}
	return ""
}

// TestCompletionsRespectParallelism runs 5 completions with parallelism 2:
// never more than 2 pods run, each pod is created with the Job's labels,
// owner and tracking finalizer, and the Job completes with 5 successes and
// every finalizer removed.
func TestCompletionsRespectParallelism(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "work", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](5)
		s.Parallelism = ptr.To[int32](2)
	})
	job = getJob(t, job)
	done := 0
	testenv.Eventually(t, timeout, func() error {
		pods := podsOf(t, job)
		run := running(pods)
		if len(run) > 2 {
			t.Fatalf("%d pods running, parallelism is 2", len(run))
		}
		if done < 5 && len(run) > 0 {
			p := run[0]
			if !metav1.IsControlledBy(&p, job) || p.Labels[labelJobName] != "work" || p.Labels[legacyLabelControllerUID] != string(job.UID) ||
				p.Labels["app"] != "work" || !hasTrackingFinalizer(&p) {
				t.Fatalf("pod %s lacks the job's owner, labels or finalizer: %+v", p.Name, p.ObjectMeta)
			}
			finishPod(t, &p, corev1.PodSucceeded)
			done++
		}
		if findCondition(&getJob(t, job).Status, batchv1.JobComplete) == nil {
			return fmt.Errorf("not complete after %d successes", done)
		}
		return nil
	})
	got := getJob(t, job)
	if done != 5 || got.Status.Succeeded != 5 || got.Status.Failed != 0 || got.Status.Active != 0 {
		t.Errorf("finished %d pods; status succeeded=%d failed=%d active=%d, want 5 5 0 0", done, got.Status.Succeeded, got.Status.Failed, got.Status.Active)
	}
	if got.Status.CompletionTime == nil || got.Status.StartTime == nil || findCondition(&got.Status, batchv1.JobSuccessCriteriaMet) == nil {
		t.Errorf("complete job lacks completionTime, startTime or SuccessCriteriaMet: %+v", got.Status)
	}
	if first := got.Status.Conditions[0].Type; first != batchv1.JobComplete {
		t.Errorf("first condition %s, want Complete: kubectl's STATUS column shows the first True one", first)
	}
	waitEvent(t, job, corev1.EventTypeNormal, "Completed", "Job completed")
	if n := len(podsOf(t, job)); n != 5 {
		t.Errorf("%d pods were created, want 5", n)
	}
	testenv.Eventually(t, timeout, func() error {
		for _, p := range podsOf(t, job) {
			if hasTrackingFinalizer(&p) {
				return fmt.Errorf("pod %s still has the tracking finalizer", p.Name)
			}
		}
		return nil
	})
}

// TestBackoffLimitExceeded fails pods until the Job's backoffLimit (1) is
// exceeded: the second failure fails the Job with BackoffLimitExceeded,
// after FailureTarget, and no pod is created after it.
func TestBackoffLimitExceeded(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "flaky", func(s *batchv1.JobSpec) { s.BackoffLimit = ptr.To[int32](1) })
	job = getJob(t, job)
	failedPods := 0
	testenv.Eventually(t, timeout, func() error {
		if run := running(podsOf(t, job)); len(run) > 0 && failedPods < 2 {
			finishPod(t, &run[0], corev1.PodFailed)
			failedPods++
		}
		if failedPods < 2 {
			return fmt.Errorf("failed %d pods", failedPods)
		}
		return nil
	})
	got := waitCondition(t, job, batchv1.JobFailed)
	if r := conditionReason(got, batchv1.JobFailed); r != reasonBackoffLimitExceeded {
		t.Errorf("Failed reason = %q, want %s", r, reasonBackoffLimitExceeded)
	}
	if conditionReason(got, batchv1.JobFailureTarget) != reasonBackoffLimitExceeded || got.Status.Failed != 2 || got.Status.CompletionTime != nil {
		t.Errorf("status = %+v, want FailureTarget, failed 2, no completionTime", got.Status)
	}
	if first := got.Status.Conditions[0].Type; first != batchv1.JobFailed {
		t.Errorf("first condition %s, want Failed: kubectl's STATUS column shows the first True one", first)
	}
	waitEvent(t, job, corev1.EventTypeWarning, reasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	time.Sleep(time.Second)
	if n := len(podsOf(t, job)); n != 2 {
		t.Errorf("%d pods exist, want the 2 that failed", n)
	}
}

// TestActiveDeadline fails a Job whose pods run past activeDeadlineSeconds
// and deletes them.
func TestActiveDeadline(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "slow", func(s *batchv1.JobSpec) {
		s.Parallelism = ptr.To[int32](2)
		s.Completions = ptr.To[int32](2)
		s.ActiveDeadlineSeconds = ptr.To[int64](2)
	})
	got := waitCondition(t, job, batchv1.JobFailed)
	if r := conditionReason(got, batchv1.JobFailed); r != reasonDeadlineExceeded {
		t.Errorf("Failed reason = %q, want %s", r, reasonDeadlineExceeded)
	}
	if got.Status.Active != 0 {
		t.Errorf("active = %d after the deadline", got.Status.Active)
	}
	testenv.Eventually(t, timeout, func() error {
		if pods := podsOf(t, job); len(pods) > 0 {
			return fmt.Errorf("%d pods left", len(pods))
		}
		return nil
	})
}

// TestSuspendAndResume creates no pods while suspended, creates them on
// resume, and deletes them on a second suspension.
func TestSuspendAndResume(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "paused", func(s *batchv1.JobSpec) {
		s.Parallelism = ptr.To[int32](2)
		s.Completions = ptr.To[int32](4)
		s.Suspend = ptr.To(true)
	})
	got := waitCondition(t, job, batchv1.JobSuspended)
	if got.Status.StartTime != nil || len(podsOf(t, job)) != 0 {
		t.Fatalf("suspended job started: %+v", got.Status)
	}
	waitEvent(t, job, corev1.EventTypeNormal, "Suspended", "Job suspended")

	setSuspend(t, job, false)
	testenv.Eventually(t, timeout, func() error {
		got := getJob(t, job)
		if n := len(running(podsOf(t, job))); n != 2 || got.Status.Active != 2 {
			return fmt.Errorf("%d pods running, status.active %d, want 2", n, got.Status.Active)
		}
		if c := findCondition(&got.Status, batchv1.JobSuspended); c != nil || got.Status.StartTime == nil {
			return fmt.Errorf("resumed job still suspended or not started: %+v", got.Status)
		}
		return nil
	})
	waitEvent(t, job, corev1.EventTypeNormal, "Resumed", "Job resumed")

	setSuspend(t, job, true)
	testenv.Eventually(t, timeout, func() error {
		got := getJob(t, job)
		if n := len(podsOf(t, job)); n != 0 || got.Status.Active != 0 {
			return fmt.Errorf("%d pods left, status.active %d", n, got.Status.Active)
		}
		if findCondition(&got.Status, batchv1.JobSuspended) == nil {
			return fmt.Errorf("no Suspended condition: %+v", got.Status)
		}
		return nil
	})
	if got := getJob(t, job); got.Status.Failed != 0 || got.Status.Succeeded != 0 {
		t.Errorf("suspension counted pods: %+v", got.Status)
	}
}

func setSuspend(t *testing.T, job *skiffbatchv1.Job, suspend bool) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		cur := getJob(t, job)
		cur.Spec.Suspend = ptr.To(suspend)
		return env.Client.Update(context.Background(), cur)
	})
}

// TestIndexedCompletion gives each index its own pod, with the index in
// the annotation, the label and JOB_COMPLETION_INDEX; a failed index is
// re-run under the same index, and the Job completes with every index.
func TestIndexedCompletion(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "indexed", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](3)
		s.Parallelism = ptr.To[int32](3)
		s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	})
	job = getJob(t, job)
	var run []skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		if run = running(podsOf(t, job)); len(run) != 3 {
			return fmt.Errorf("%d pods running, want 3", len(run))
		}
		return nil
	})
	seen := map[string]bool{}
	for _, p := range run {
		idx := p.Annotations[labelCompletionIndex]
		if seen[idx] || p.Labels[labelCompletionIndex] != idx || !strings.HasPrefix(p.Name, "indexed-"+idx+"-") {
			t.Errorf("pod %s: index annotation %q, label %q, or a repeated index", p.Name, idx, p.Labels[labelCompletionIndex])
		}
		seen[idx] = true
		vars := p.Spec.Containers[0].Env
		if len(vars) != 1 || vars[0].Name != envCompletionIndex || vars[0].ValueFrom == nil || vars[0].ValueFrom.FieldRef == nil {
			t.Errorf("pod %s has env %+v, want %s from its annotation", p.Name, vars, envCompletionIndex)
		}
	}
	if !seen["0"] || !seen["1"] || !seen["2"] {
		t.Fatalf("indexes %v, want 0, 1 and 2", seen)
	}
	for _, p := range run {
		phase := corev1.PodSucceeded
		if p.Annotations[labelCompletionIndex] == "1" {
			phase = corev1.PodFailed
		}
		finishPod(t, &p, phase)
	}
	// Index 1 comes back once.
	var retry skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 1 || run[0].Annotations[labelCompletionIndex] != "1" {
			return fmt.Errorf("running %d pods, want the retry of index 1 alone", len(run))
		}
		retry = run[0]
		return nil
	})
	// The retry may start before the sync that counts index 2.
	testenv.Eventually(t, timeout, func() error {
		if got := getJob(t, job); got.Status.CompletedIndexes != "0,2" {
			return fmt.Errorf("completedIndexes = %q, want 0,2", got.Status.CompletedIndexes)
		}
		return nil
	})
	finishPod(t, &retry, corev1.PodSucceeded)
	got := waitCondition(t, job, batchv1.JobComplete)
	if got.Status.CompletedIndexes != "0-2" || got.Status.Succeeded != 3 || got.Status.Failed != 1 {
		t.Errorf("status = completedIndexes %q succeeded %d failed %d, want 0-2 3 1", got.Status.CompletedIndexes, got.Status.Succeeded, got.Status.Failed)
	}
	if n := len(podsOf(t, job)); n != 4 {
		t.Errorf("%d pods were created, want 4", n)
	}
}

// TestDeletedFinishedPodCountedOnce finishes and deletes a pod while the
// controller is down: the tracking finalizer keeps it until the restarted
// controller counts it, exactly once, and then lets it go.
func TestDeletedFinishedPodCountedOnce(t *testing.T) {
	stop := startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "once", nil)
	job = getJob(t, job)
	var p skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 1 {
			return fmt.Errorf("%d pods running, want 1", len(run))
		}
		p = run[0]
		return nil
	})
	stop()
	finishPod(t, &p, corev1.PodSucceeded)
	if err := env.Client.Delete(context.Background(), &p); err != nil {
		t.Fatal(err)
	}
	if pods := podsOf(t, job); len(pods) != 1 || pods[0].DeletionTimestamp == nil {
		t.Fatalf("the finalizer did not hold the deleted pod: %d pods", len(pods))
	}

	startController(t)
	got := waitCondition(t, job, batchv1.JobComplete)
	if got.Status.Succeeded != 1 || got.Status.Failed != 0 {
		t.Errorf("succeeded=%d failed=%d, want 1 0", got.Status.Succeeded, got.Status.Failed)
	}
	testenv.Eventually(t, timeout, func() error {
		if pods := podsOf(t, job); len(pods) != 0 {
			return fmt.Errorf("the counted pod is still held")
		}
		return nil
	})
	time.Sleep(time.Second)
	if got := getJob(t, job); got.Status.Succeeded != 1 || len(podsOf(t, job)) != 0 {
		t.Errorf("after settling: succeeded=%d, pods=%d; want 1 and 0", got.Status.Succeeded, len(podsOf(t, job)))
	}
}

// TestFailedPodReplacedAfterBackoff fails a pod and checks that its
// replacement waits out the back-off (2s after the first failure) rather
// than coming at once.
func TestFailedPodReplacedAfterBackoff(t *testing.T) {
	startControllerWithBackoff(t, 2*time.Second)
	ns := newNamespace(t)
	job := createJob(t, ns, "backoff", nil)
	job = getJob(t, job)
	var first skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 1 {
			return fmt.Errorf("%d pods running, want 1", len(run))
		}
		first = run[0]
		return nil
	})
	failedAt := time.Now()
	finishPod(t, &first, corev1.PodFailed)
	testenv.Eventually(t, timeout, func() error {
		if got := getJob(t, job); got.Status.Failed != 1 {
			return fmt.Errorf("failed = %d, want 1", got.Status.Failed)
		}
		return nil
	})
	testenv.Eventually(t, timeout, func() error {
		if run := running(podsOf(t, job)); len(run) != 1 {
			return fmt.Errorf("%d pods running, want the replacement", len(run))
		}
		return nil
	})
	// Without a back-off the replacement would show within a few hundred
	// milliseconds (this loop polls every 100ms).
	if gap := time.Since(failedAt); gap < 1500*time.Millisecond {
		t.Errorf("replacement seen %s after the failure, want the 2s back-off", gap)
	}
}

// TestPodFailurePolicy ignores a failure that an Ignore rule matches (the
// pod is replaced, failed stays 0 despite backoffLimit 0) and fails the
// Job at once when a FailJob rule matches, with reason PodFailurePolicy.
func TestPodFailurePolicy(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "policy", func(s *batchv1.JobSpec) {
		s.BackoffLimit = ptr.To[int32](0)
		s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
			{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
			{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		}}
	})
	job = getJob(t, job)
	first := waitRunning(t, job, "")
	first.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "PreemptionByScheduler"}}
	finishPod(t, &first, corev1.PodFailed)
	second := waitRunning(t, job, first.Name)
	if got := getJob(t, job); got.Status.Failed != 0 || findCondition(&got.Status, batchv1.JobFailureTarget) != nil {
		t.Fatalf("an ignored failure counted: %+v", got.Status)
	}

	second.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Image: "busybox",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 42}}}}
	second.Status.Phase = corev1.PodFailed
	if err := env.Client.Status().Update(context.Background(), &second); err != nil {
		t.Fatal(err)
	}
	got := waitCondition(t, job, batchv1.JobFailed)
	if c := findCondition(&got.Status, batchv1.JobFailed); c.Reason != reasonPodFailurePolicy || !strings.Contains(c.Message, "exit code 42") {
		t.Errorf("Failed condition = %+v, want reason %s naming exit code 42", c, reasonPodFailurePolicy)
	}
	if got.Status.Failed != 1 {
		t.Errorf("failed = %d, want 1", got.Status.Failed)
	}
}

// waitRunning waits for one running pod of the job other than not.
func waitRunning(t *testing.T, job *skiffbatchv1.Job, not string) skiffcorev1.Pod {
	t.Helper()
	var p skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 1 || run[0].Name == not {
			return fmt.Errorf("%d pods running, want one new", len(run))
		}
		p = run[0]
		return nil
	})
	return p
}

// TestTTLAfterFinished deletes a Job ttlSecondsAfterFinished after it
// completes.
func TestTTLAfterFinished(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "ephemeral", func(s *batchv1.JobSpec) { s.TTLSecondsAfterFinished = ptr.To[int32](1) })
	job = getJob(t, job)
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 1 {
			return fmt.Errorf("%d pods running, want 1", len(run))
		}
		finishPod(t, &run[0], corev1.PodSucceeded)
		return nil
	})
	testenv.Eventually(t, timeout, func() error {
		var got skiffbatchv1.Job
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), &got)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("job still exists: %+v", got.Status)
	})
}

// TestSuccessPolicy completes an Indexed Job as soon as its leader (index
// 0) succeeds, stopping the other indexes without counting them failed.
func TestSuccessPolicy(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "leader", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](3)
		s.Parallelism = ptr.To[int32](3)
		s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		s.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
	})
	job = getJob(t, job)
	var leader skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		run := running(podsOf(t, job))
		if len(run) != 3 {
			return fmt.Errorf("%d pods running, want 3", len(run))
		}
		for _, p := range run {
			if p.Annotations[labelCompletionIndex] == "0" {
				leader = p
			}
		}
		return nil
	})
	finishPod(t, &leader, corev1.PodSucceeded)
	got := waitCondition(t, job, batchv1.JobComplete)
	if conditionReason(got, batchv1.JobSuccessCriteriaMet) != reasonSuccessPolicy || got.Status.CompletedIndexes != "0" || got.Status.Failed != 0 {
		t.Errorf("status = %+v, want SuccessCriteriaMet by SuccessPolicy, completedIndexes 0, failed 0", got.Status)
	}
	testenv.Eventually(t, timeout, func() error {
		if run := running(podsOf(t, job)); len(run) != 0 {
			return fmt.Errorf("%d pods still running", len(run))
		}
		return nil
	})
}

// TestBackoffLimitPerIndex retries index 0 once (its retry carries the
// failure count), gives it up after the second failure while index 1 goes
// on, and fails the Job with FailedIndexes once every index is done.
func TestBackoffLimitPerIndex(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "perindex", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](2)
		s.Parallelism = ptr.To[int32](2)
		s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		s.BackoffLimitPerIndex = ptr.To[int32](1)
	})
	job = getJob(t, job)
	byIndex := func() map[string]skiffcorev1.Pod {
		out := map[string]skiffcorev1.Pod{}
		for _, p := range running(podsOf(t, job)) {
			out[p.Annotations[labelCompletionIndex]] = p
		}
		return out
	}
	var run map[string]skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		if run = byIndex(); len(run) != 2 {
			return fmt.Errorf("%d indexes running, want 2", len(run))
		}
		return nil
	})
	first := run["0"]
	if first.Annotations[annotationIndexFailures] != "0" {
		t.Errorf("first pod of index 0 has failure count %q, want 0", first.Annotations[annotationIndexFailures])
	}
	finishPod(t, &first, corev1.PodFailed)
	var retry skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		p, ok := byIndex()["0"]
		if !ok || p.Name == first.Name {
			return fmt.Errorf("index 0 not retried yet")
		}
		retry = p
		return nil
	})
	if retry.Annotations[annotationIndexFailures] != "1" {
		t.Errorf("retry of index 0 has failure count %q, want 1", retry.Annotations[annotationIndexFailures])
	}
	finishPod(t, &retry, corev1.PodFailed)
	testenv.Eventually(t, timeout, func() error {
		got := getJob(t, job)
		if ptr.Deref(got.Status.FailedIndexes, "") != "0" {
			return fmt.Errorf("failedIndexes = %q, want 0", ptr.Deref(got.Status.FailedIndexes, ""))
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond)
	if _, ok := byIndex()["0"]; ok {
		t.Fatal("a failed index was run again")
	}
	one := run["1"]
	finishPod(t, &one, corev1.PodSucceeded)
	got := waitCondition(t, job, batchv1.JobFailed)
	if conditionReason(got, batchv1.JobFailed) != reasonFailedIndexes || got.Status.CompletedIndexes != "1" || got.Status.Failed != 2 {
		t.Errorf("status = %+v, want Failed by FailedIndexes, completedIndexes 1, failed 2", got.Status)
	}
}
