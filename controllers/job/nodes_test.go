package job

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/internal/recorder"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/simulated"
)

// TestJobOnSimulatedNodes runs Jobs end to end: the scheduler binds their
// pods, a simulated node runs them (1s each) and reports their exit. A Job
// of 3 completions with parallelism 2 completes; one whose pods exit 1
// fails once its backoffLimit is used up. Bound pods carry the node's
// termination finalizer too, so this also proves the two finalizers get
// along.
func TestJobOnSimulatedNodes(t *testing.T) {
	startNode(t, "job-node")
	startWithScheduler(t)
	ns := newNamespace(t)
	ok := createJob(t, ns, "ok", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](3)
		s.Parallelism = ptr.To[int32](2)
	})
	bad := createJob(t, ns, "bad", func(s *batchv1.JobSpec) {
		s.BackoffLimit = ptr.To[int32](1)
		s.Template.Annotations = map[string]string{simulated.ExitCodeAnnotation: "1"}
	})

	got := waitCondition(t, ok, batchv1.JobComplete)
	if got.Status.Succeeded != 3 || got.Status.Failed != 0 {
		t.Errorf("ok job: succeeded=%d failed=%d, want 3 0", got.Status.Succeeded, got.Status.Failed)
	}
	got = waitCondition(t, bad, batchv1.JobFailed)
	if conditionReason(got, batchv1.JobFailed) != reasonBackoffLimitExceeded || got.Status.Failed != 2 {
		t.Errorf("bad job: reason %q failed %d, want %s 2", conditionReason(got, batchv1.JobFailed), got.Status.Failed, reasonBackoffLimitExceeded)
	}
	testenv.Eventually(t, timeout, func() error {
		for _, j := range []*skiffbatchv1.Job{getJob(t, ok), getJob(t, bad)} {
			for _, p := range podsOf(t, j) {
				if hasTrackingFinalizer(&p) || p.Spec.NodeName == "" {
					return fmt.Errorf("pod %s: node %q, finalizers %v", p.Name, p.Spec.NodeName, p.Finalizers)
				}
			}
		}
		return nil
	})
}

// TestOnFailureRestartsCountTowardBackoffLimit runs a Job whose pod
// restarts its failing container in place (restartPolicy OnFailure): the
// pod never fails, but its restarts use up the backoffLimit (2), and the
// Job fails with BackoffLimitExceeded, as upstream, with its one pod
// deleted and counted failed.
func TestOnFailureRestartsCountTowardBackoffLimit(t *testing.T) {
	startNode(t, "restart-node")
	startWithScheduler(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "crashloop", func(s *batchv1.JobSpec) {
		s.BackoffLimit = ptr.To[int32](2)
		s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		s.Template.Annotations = map[string]string{simulated.ExitCodeAnnotation: "1"}
	})
	got := waitCondition(t, job, batchv1.JobFailed)
	if r := conditionReason(got, batchv1.JobFailed); r != reasonBackoffLimitExceeded || got.Status.Failed != 1 {
		t.Errorf("Failed reason %q, failed %d; want %s and the 1 pod that restarted", r, got.Status.Failed, reasonBackoffLimitExceeded)
	}
	testenv.Eventually(t, timeout, func() error {
		if pods := podsOf(t, job); len(pods) != 0 {
			return fmt.Errorf("%d pods left after the failure", len(pods))
		}
		return nil
	})
}

// startWithScheduler runs the scheduler and the Job controller, with a
// fast back-off.
func startWithScheduler(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error {
		if err := scheduler.Setup(m, scheduler.Config{}); err != nil {
			return err
		}
		r := &Reconciler{
			Client:      m.GetClient(),
			Recorder:    recorder.New(m, "job-controller"),
			Clock:       clock.RealClock{},
			BackoffBase: 100 * time.Millisecond,
			BackoffMax:  time.Second,
		}
		return r.SetupWithManager(m)
	})
}

// startNode runs one simulated node, NAME-0, until the test ends. Its
// containers run for 1s; a failed one restarts after 1s, then 2s, 4s...
func startNode(t *testing.T, name string) {
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: name, Count: 1,
		Runtime:            simulated.Options{RunDuration: time.Second, RestartBackoff: time.Second},
		LeaseRenewInterval: 500 * time.Millisecond})
}
