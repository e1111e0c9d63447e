package job

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/internal/recorder"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
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

// startNode runs one simulated node in this process until the test ends,
// and deletes it afterwards.
func startNode(t *testing.T, name string) {
	t.Helper()
	host, err := nodeagent.NewHost(env.FastConfig(), nodeagent.Options{
		NewRuntime:         func(string) nodeagent.Runtime { return simulated.New(simulated.Options{RunDuration: time.Second}) },
		LeaseRenewInterval: 500 * time.Millisecond,
		Nodes: []nodeagent.NodeConfig{{Name: name, InternalIP: "192.0.2.10", Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("4"),
			corev1.ResourceMemory: resource.MustParse("16Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := env.Client.Delete(context.Background(), n); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	})
	testenv.Run(t, "the simulated node", host.Start)
	testenv.Eventually(t, timeout, func() error {
		if host.Registered() < 1 {
			return fmt.Errorf("node %s not registered", name)
		}
		return nil
	})
}
