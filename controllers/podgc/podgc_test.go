package podgc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

func TestIsOutOfService(t *testing.T) {
	outOfService := corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
	ready := func(s corev1.ConditionStatus) []corev1.NodeCondition {
		return []corev1.NodeCondition{{Type: corev1.NodeReady, Status: s}}
	}
	cases := []struct {
		name       string
		conditions []corev1.NodeCondition
		taints     []corev1.Taint
		want       bool
	}{
		{"not ready and tainted", ready(corev1.ConditionFalse), []corev1.Taint{outOfService}, true},
		{"unknown and tainted", ready(corev1.ConditionUnknown), []corev1.Taint{outOfService}, true},
		{"never reported and tainted", nil, []corev1.Taint{outOfService}, true},
		{"ready and tainted: the admin is early, wait", ready(corev1.ConditionTrue), []corev1.Taint{outOfService}, false},
		{"not ready, not tainted", ready(corev1.ConditionFalse), nil, false},
		{"NoSchedule is not the shutdown taint", ready(corev1.ConditionFalse), []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Effect: corev1.TaintEffectNoSchedule}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &skiffcorev1.Node{Spec: corev1.NodeSpec{Taints: tc.taints}, Status: corev1.NodeStatus{Conditions: tc.conditions}}
			if got := isOutOfService(n); got != tc.want {
				t.Fatalf("isOutOfService = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := &Reconciler{Clock: clk, Quarantine: 40 * time.Second, missingSince: map[types.NamespacedName]sighting{}}
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1"}}

	steps := []struct {
		name    string
		advance time.Duration
		change  func()
		want    time.Duration
	}{
		{"first sighting starts the quarantine", 0, nil, 40 * time.Second},
		{"time counts down", 15 * time.Second, nil, 25 * time.Second},
		{"over", 25 * time.Second, nil, 0},
		{"the node came back: forgotten", 0, func() { r.forget(client.ObjectKeyFromObject(pod)) }, 40 * time.Second},
		{"a new pod with the same name starts again", 30 * time.Second, func() { pod.UID = "uid-2" }, 40 * time.Second},
	}
	for _, st := range steps {
		clk.SetTime(clk.Now().Add(st.advance))
		if st.change != nil {
			st.change()
		}
		if got := r.quarantineLeft(pod); got != st.want {
			t.Fatalf("%s: quarantineLeft = %s, want %s", st.name, got, st.want)
		}
	}
}

// quarantine is the suite's short stand-in for upstream's 40s.
const quarantine = 2 * time.Second

func startController(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error {
		return setup(m, options{quarantine: quarantine}, clock.RealClock{})
	})
}

// TestOrphanedPodIsRemovedAfterQuarantine: a pod bound to a node that does
// not exist, held by the termination finalizer, is marked Failed and goes,
// but not before the quarantine.
func TestOrphanedPodIsRemovedAfterQuarantine(t *testing.T) {
	startController(t)
	start := time.Now()
	pod := createPod(t, "orphan", "ghost")
	// A second orphan that another finalizer holds shows what pod GC wrote.
	held := createPod(t, "orphan-held", "ghost", "example.com/keep")
	gone := waitGone(t, pod)
	if elapsed := gone.Sub(start); elapsed < quarantine {
		t.Fatalf("the orphan went after %s, within the %s quarantine", elapsed, quarantine)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var got skiffcorev1.Pod
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(held), &got); err != nil {
			return err
		}
		c := podutil.Condition(&got.Status, corev1.DisruptionTarget)
		switch {
		case got.DeletionTimestamp == nil:
			return errors.New("orphan-held is not being deleted")
		case len(got.Finalizers) != 1 || got.Finalizers[0] != "example.com/keep":
			return fmt.Errorf("orphan-held has finalizers %v, want only example.com/keep", got.Finalizers)
		case got.Status.Phase != corev1.PodFailed || c == nil || c.Reason != "DeletionByPodGC":
			return fmt.Errorf("orphan-held has phase %q and DisruptionTarget %+v, want Failed and DeletionByPodGC", got.Status.Phase, c)
		}
		return nil
	})
}

// TestPodOfLateNodeIsKept: a pod bound to a node that registers within the
// quarantine is left alone.
func TestPodOfLateNodeIsKept(t *testing.T) {
	startController(t)
	pod := createPod(t, "early", "late")
	time.Sleep(quarantine / 4)
	createNode(t, "late", corev1.ConditionTrue)
	time.Sleep(2 * quarantine)
	expectUntouched(t, pod)
}

// TestTerminatingPodOfDeletedNode: pods on a live node are left to its
// agent, even terminating ones; once the node is deleted, both the
// terminating pod and the running one go.
func TestTerminatingPodOfDeletedNode(t *testing.T) {
	ctx := context.Background()
	startController(t)
	node := createNode(t, "leaving", corev1.ConditionTrue)
	terminating := createPod(t, "terminating", node.Name)
	running := createPod(t, "running", node.Name)
	if err := env.Client.Delete(ctx, terminating); err != nil {
		t.Fatal(err)
	}

	time.Sleep(2 * quarantine)
	var got skiffcorev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(terminating), &got); err != nil {
		t.Fatalf("a terminating pod on a live node was removed: %v", err)
	}
	expectUntouched(t, running)

	if err := env.Client.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	waitGone(t, terminating)
	waitGone(t, running)
}

// TestOutOfServiceNode: a terminating pod on a node that is not ready and
// tainted out-of-service:NoExecute goes without waiting for its agent; a
// running one stays (the taint manager evicts it).
func TestOutOfServiceNode(t *testing.T) {
	ctx := context.Background()
	startController(t)
	node := createNode(t, "shutdown", corev1.ConditionFalse)
	terminating := createPod(t, "stuck", node.Name)
	running := createPod(t, "bystander", node.Name)
	if err := env.Client.Delete(ctx, terminating); err != nil {
		t.Fatal(err)
	}
	node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}}
	if err := env.Client.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	waitGone(t, terminating)
	expectUntouched(t, running)
}

// TestUnscheduledTerminatingPod: a terminating pod that never got a node
// loses a leftover termination finalizer and goes; other finalizers stay.
func TestUnscheduledTerminatingPod(t *testing.T) {
	ctx := context.Background()
	startController(t)
	pod := createPod(t, "unbound", "")
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pod)

	held := createPod(t, "held", "", "example.com/keep")
	if err := env.Client.Delete(ctx, held); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var got skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(held), &got); err != nil {
			return err
		}
		if len(got.Finalizers) != 1 || got.Finalizers[0] != "example.com/keep" {
			return fmt.Errorf("finalizers %v, want only example.com/keep", got.Finalizers)
		}
		return nil
	})
}

// createPod creates a pod bound to node (unbound if empty) with the
// termination finalizer and any others, and removes it when the test ends.
func createPod(t *testing.T, name, node string, finalizers ...string) *skiffcorev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Finalizers: append([]string{skiffcorev1.PodTerminationFinalizer}, finalizers...)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var p skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			return
		}
		p.Finalizers = nil
		_ = env.Client.Update(ctx, &p)
		_ = env.Client.Delete(ctx, &p)
	})
	return pod
}

// createNode creates a node with the given Ready status, deleted when the
// test ends.
func createNode(t *testing.T, name string, ready corev1.ConditionStatus) *skiffcorev1.Node {
	t.Helper()
	ctx := context.Background()
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, node) })
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	return node
}

// waitGone waits until the pod no longer exists and returns when that was
// seen.
func waitGone(t *testing.T, pod *skiffcorev1.Pod) time.Time {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		var got skiffcorev1.Pod
		err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &got)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("pod %s still exists (deleting: %v, finalizers %v)", pod.Name, got.DeletionTimestamp != nil, got.Finalizers)
	})
	return time.Now()
}

// expectUntouched checks that pod GC left the pod as it was: not deleting,
// finalizer in place, not marked Failed.
func expectUntouched(t *testing.T, pod *skiffcorev1.Pod) {
	t.Helper()
	var got skiffcorev1.Pod
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	var problems []error
	if got.DeletionTimestamp != nil {
		problems = append(problems, errors.New("it is being deleted"))
	}
	if len(got.Finalizers) == 0 {
		problems = append(problems, errors.New("its finalizer was removed"))
	}
	if got.Status.Phase == corev1.PodFailed || podutil.Condition(&got.Status, corev1.DisruptionTarget) != nil {
		problems = append(problems, errors.New("it was marked for disruption"))
	}
	if err := errors.Join(problems...); err != nil {
		t.Fatalf("pod %s should have been left alone: %v", pod.Name, err)
	}
}

func TestExcessTerminated(t *testing.T) {
	pod := func(name string, created int, phase corev1.PodPhase, deleting bool) skiffcorev1.Pod {
		p := skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(time.Unix(int64(created), 0))}}
		p.Status.Phase = phase
		if deleting {
			p.DeletionTimestamp = &p.CreationTimestamp
		}
		return p
	}
	cases := []struct {
		name      string
		pods      []skiffcorev1.Pod
		threshold int
		want      []string
	}{
		{"under the threshold", []skiffcorev1.Pod{pod("a", 1, corev1.PodSucceeded, false)}, 2, nil},
		{"at the threshold", []skiffcorev1.Pod{pod("a", 1, corev1.PodSucceeded, false), pod("b", 2, corev1.PodFailed, false)}, 2, nil},
		{
			"the oldest finished pods go first; running ones do not count",
			[]skiffcorev1.Pod{pod("new", 9, corev1.PodSucceeded, false), pod("run", 0, corev1.PodRunning, false), pod("old", 1, corev1.PodFailed, false), pod("mid", 5, corev1.PodSucceeded, false)},
			1, []string{"old", "mid"},
		},
		{"same age: by name", []skiffcorev1.Pod{pod("b", 1, corev1.PodSucceeded, false), pod("a", 1, corev1.PodSucceeded, false)}, 1, []string{"a"}},
		{
			"pods already being deleted count but are not returned",
			[]skiffcorev1.Pod{pod("gone", 0, corev1.PodSucceeded, true), pod("a", 1, corev1.PodSucceeded, false), pod("b", 2, corev1.PodSucceeded, false)},
			2, []string{"a"},
		},
		{"pending pods never go", []skiffcorev1.Pod{pod("p", 0, corev1.PodPending, false), pod("q", 0, "", false)}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range excessTerminated(tc.pods, tc.threshold) {
				got = append(got, p.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("excessTerminated = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTerminatedPodThreshold: above the threshold, the oldest finished pods
// are deleted; running pods and the newest finished ones stay.
func TestTerminatedPodThreshold(t *testing.T) {
	ctx := context.Background()
	env.StartManager(t, func(m ctrl.Manager) error {
		return setup(m, options{quarantine: quarantine, terminatedThreshold: 2, gcPeriod: 200 * time.Millisecond}, clock.RealClock{})
	})
	running := createPod(t, "busy", "")
	var finished []*skiffcorev1.Pod
	for _, name := range []string{"done-a", "done-b", "done-c", "done-d"} {
		p := createPod(t, name, "")
		p.Finalizers = nil
		if err := env.Client.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodSucceeded
		if err := env.Client.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		finished = append(finished, p)
	}
	waitGone(t, finished[0])
	waitGone(t, finished[1])
	time.Sleep(time.Second)
	for _, p := range append(finished[2:], running) {
		var got skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			t.Fatalf("pod %s should have stayed: %v", p.Name, err)
		}
	}
}
