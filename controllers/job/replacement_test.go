package job

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	"skiff.dev/skiff/internal/testenv"
)

// holdFinalizer keeps a deleted pod Terminating, as its node agent does
// until it has stopped the pod's containers.
const holdFinalizer = "test.skiff.dev/hold"

// TestPodReplacementPolicy deletes the running pod of a Job while a
// finalizer holds it Terminating. status.terminating counts it either way.
// Under TerminatingOrFailed (the default) its replacement starts at once;
// under Failed, or unset with a podFailurePolicy, none starts until the
// pod is gone.
func TestPodReplacementPolicy(t *testing.T) {
	startController(t)
	cases := []struct {
		name       string
		mutate     func(*batchv1.JobSpec)
		waitForEnd bool
	}{
		{"TerminatingOrFailed", func(s *batchv1.JobSpec) { s.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed) }, false},
		{"Failed", func(s *batchv1.JobSpec) { s.PodReplacementPolicy = ptr.To(batchv1.Failed) }, true},
		{"unset with a podFailurePolicy", func(s *batchv1.JobSpec) {
			s.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}}}}
		}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			job := getJob(t, createJob(t, ns, fmt.Sprintf("replace-%d", i), tc.mutate))
			first := waitRunning(t, job, "")
			p := first.DeepCopy()
			controllerutil.AddFinalizer(p, holdFinalizer)
			if err := env.Client.Update(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			if err := env.Client.Delete(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			waitTerminating(t, job, 1)
			if tc.waitForEnd {
				time.Sleep(2 * time.Second)
				if run := running(podsOf(t, job)); len(run) != 0 {
					t.Fatalf("a replacement (%s) started while the pod was terminating", run[0].Name)
				}
				waitTerminating(t, job, 1)
			} else {
				waitRunning(t, job, first.Name)
			}
			p = getPod(t, &first)
			controllerutil.RemoveFinalizer(p, holdFinalizer)
			if err := env.Client.Update(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			waitTerminating(t, job, 0)
			waitRunning(t, job, first.Name)
			if got := getJob(t, job); got.Status.Failed != 0 || got.Status.Active != 1 {
				t.Errorf("status failed=%d active=%d, want 0 1: a deleted pod is replaced, not counted", got.Status.Failed, got.Status.Active)
			}
		})
	}
}

// waitTerminating waits for the job's status.terminating to be n.
func waitTerminating(t *testing.T, job *skiffbatchv1.Job, n int32) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if got := ptr.Deref(getJob(t, job).Status.Terminating, -1); got != n {
			return fmt.Errorf("status.terminating = %d, want %d", got, n)
		}
		return nil
	})
}
