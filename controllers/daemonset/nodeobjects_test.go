package daemonset

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/recorder"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
)

// TestOnNodeObjects runs the DaemonSet controller alone, on a fake clock,
// over Node objects that no agent runs and without a scheduler: the test
// plays the nodes' part, writing the pods' status itself, so that it
// decides when a pod gets ready or fails and when time passes. Unbound
// pods carry no finalizer, so a deleted pod is gone at once.
func TestOnNodeObjects(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now().Truncate(time.Second))
	env.StartManager(t, func(m ctrl.Manager) error {
		r := &Reconciler{Client: m.GetClient(), APIReader: m.GetAPIReader(),
			Recorder: recorder.New(m, "daemonset-controller"), Clock: clk}
		return r.SetupWithManager(m)
	})
	// In sequence: the scenarios share the clock.
	t.Run("the status counts what each node runs", func(t *testing.T) { testStatus(t, clk) })
	t.Run("a failed pod is replaced, with a back-off per node", func(t *testing.T) { testFailedPods(t, clk) })
	t.Run("a revision name taken by another template raises the collision count", testCollision)
	t.Run("a terminating pod holds its node until it is gone", testTerminating)
}

func testTerminating(t *testing.T) {
	const kind = "ds-terminating"
	node := createNodes(t, kind, 1)[0]
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "terminating", kind, nil)
	pod := waitForPodOn(t, ns, node, "")

	// A finalizer plays the node agent that has not stopped the pod yet.
	const hold = "test.skiff.dev/hold"
	patchPod := func(change func(*skiffcorev1.Pod)) {
		t.Helper()
		var cur skiffcorev1.Pod
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(&pod), &cur); err != nil {
			t.Fatal(err)
		}
		orig := cur.DeepCopy()
		change(&cur)
		if err := env.Client.Patch(ctx(), &cur, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	patchPod(func(p *skiffcorev1.Pod) { p.Finalizers = append(p.Finalizers, hold) })
	if err := env.Client.Delete(ctx(), &pod); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var list skiffcorev1.PodList
	if err := env.Client.List(ctx(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].UID != pod.UID || list.Items[0].DeletionTimestamp == nil {
		t.Errorf("pods %v while the first one terminates, want only it", list.Items)
	}
	// The node still runs it: it is still scheduled there.
	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if s.DesiredNumberScheduled != 1 || s.CurrentNumberScheduled != 1 {
			return fmt.Errorf("status %s", s.String())
		}
		return nil
	})

	// Once it is gone, the node gets its replacement.
	patchPod(func(p *skiffcorev1.Pod) { p.Finalizers = nil })
	waitForPodOn(t, ns, node, pod.UID)
}

func testStatus(t *testing.T, clk *clocktesting.FakeClock) {
	const kind = "ds-status"
	nodes := createNodes(t, kind, 2)
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "status", kind, func(ds *skiffappsv1.DaemonSet) {
		ds.Spec.MinReadySeconds = 2
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	})
	counts := func(desired, current, misscheduled, ready, available, unavailable, updated int32) appsv1.DaemonSetStatus {
		return appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: desired,
			CurrentNumberScheduled: current, NumberMisscheduled: misscheduled, NumberReady: ready,
			NumberAvailable: available, NumberUnavailable: unavailable, UpdatedNumberScheduled: updated}
	}

	// Two pods, neither ready yet.
	first := waitForPodOn(t, ns, nodes[0], "")
	waitForPodOn(t, ns, nodes[1], "")
	waitForStatus(t, ds, statusIs(counts(2, 2, 0, 0, 0, 2, 2)))

	// One gets ready: it is not available before minReadySeconds, on the
	// frozen clock.
	setPodStatus(t, first, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(clk.Now())}}
	})
	waitForStatus(t, ds, statusIs(counts(2, 2, 0, 1, 0, 2, 2)))
	clk.Step(3 * time.Second)
	waitForStatus(t, ds, statusIs(counts(2, 2, 0, 1, 1, 1, 2)))

	// A new template (OnDelete: nothing is replaced): no pod is up to
	// date, and the new generation is observed.
	update(t, ds, func(ds *skiffappsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "daemon:v2" })
	waitForStatus(t, ds, statusIs(counts(2, 2, 0, 1, 1, 1, 0)))

	// A NoSchedule taint takes the second node out of the desired ones;
	// its pod may stay, and is misscheduled.
	addTaint(t, nodes[1], corev1.Taint{Key: "dedicated", Value: "other", Effect: corev1.TaintEffectNoSchedule})
	waitForStatus(t, ds, statusIs(counts(1, 1, 1, 1, 1, 0, 0)))
}

func testFailedPods(t *testing.T, clk *clocktesting.FakeClock) {
	const kind = "ds-crash"
	node := createNodes(t, kind, 1)[0]
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "crash", kind, nil)
	failed := func(pod skiffcorev1.Pod) {
		setPodStatus(t, pod, func(s *corev1.PodStatus) { s.Phase = corev1.PodFailed })
	}

	// The first failure on a node is replaced at once, with a Warning.
	p1 := waitForPodOn(t, ns, node, "")
	failed(p1)
	p2 := waitForPodOn(t, ns, node, p1.UID)
	waitForFailedDaemonPodEvents(t, ns, []string{fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", ns, p1.Name, node)})

	// The second waits out a 1s back-off, on the frozen clock for ever.
	failed(p2)
	time.Sleep(3 * time.Second)
	checkOnlyPod(t, ns, p2.UID)
	clk.Step(time.Second)
	p3 := waitForPodOn(t, ns, node, p2.UID)

	// The third waits 2s: a second is not enough.
	failed(p3)
	clk.Step(time.Second)
	time.Sleep(3 * time.Second)
	checkOnlyPod(t, ns, p3.UID)
	clk.Step(time.Second)
	waitForPodOn(t, ns, node, p3.UID)
	waitForFailedDaemonPodEvents(t, ns, []string{
		fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", ns, p1.Name, node),
		fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", ns, p2.Name, node),
		fmt.Sprintf("Found failed daemon pod %s/%s on node %s, will try to kill it", ns, p3.Name, node),
	})
	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if s.CollisionCount != nil {
			return fmt.Errorf("collision count %d without a collision", *s.CollisionCount)
		}
		return nil
	})
}

func testCollision(t *testing.T) {
	const kind = "ds-collide"
	node := createNodes(t, kind, 1)[0]
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "collide", kind, nil)
	waitForPodOn(t, ns, node, "")

	// The next template's revision name is taken by another template.
	// (Hashed as the apiserver returns the DaemonSet, defaults filled in.)
	if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(ds), ds); err != nil {
		t.Fatal(err)
	}
	next := ds.Spec.Template.DeepCopy()
	next.Spec.Containers[0].Image = "daemon:v2"
	takenData := []byte(`{"spec":{"template":{"$patch":"replace","spec":{"containers":[{"name":"other","image":"other"}]}}}}`)
	taken := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: ds.Name + "-" + templateHash(next, nil), Namespace: ns},
		Data:       runtime.RawExtension{Raw: takenData},
		Revision:   1,
	}
	if err := env.Client.Create(ctx(), taken); err != nil {
		t.Fatal(err)
	}
	update(t, ds, func(ds *skiffappsv1.DaemonSet) { ds.Spec.Template = *next })

	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if ptr.Deref(s.CollisionCount, 0) != 1 {
			return fmt.Errorf("collision count %v, want 1", s.CollisionCount)
		}
		return nil
	})
	// The new template rolls out under the hash of collision count 1.
	want := templateHash(next, ptr.To[int32](1))
	testenv.Eventually(t, timeout, func() error {
		pods := podsFor(t, ns, node)
		if len(pods) != 1 || pods[0].Labels[appsv1.ControllerRevisionHashLabelKey] != want {
			return fmt.Errorf("pods for %s: %d, want one of hash %s", node, len(pods), want)
		}
		return nil
	})
	var rev appsv1.ControllerRevision
	if err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: ds.Name + "-" + want}, &rev); err != nil {
		t.Fatalf("the new template's revision: %v", err)
	}
	if !metav1.IsControlledBy(&rev, ds) || rev.Revision != 2 {
		t.Errorf("revision %s: controlled by the DaemonSet %v, number %d; want true, 2", rev.Name, metav1.IsControlledBy(&rev, ds), rev.Revision)
	}
	if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(taken), taken); err != nil {
		t.Fatal(err)
	}
	if !sameRevisionData(taken.Data.Raw, takenData) || len(taken.OwnerReferences) != 0 {
		t.Errorf("the other template's revision was changed: %s, owners %v", taken.Data.Raw, taken.OwnerReferences)
	}
}

// createNodes creates n Node objects prefix-0..n-1 of the given instance
// type, with no agent behind them, and deletes them after the test.
func createNodes(t *testing.T, prefix string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   fmt.Sprintf("%s-%d", prefix, i),
			Labels: map[string]string{nodeagent.LabelInstanceType: prefix},
		}}
		if err := env.Client.Create(ctx(), node); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx(), node) })
		names = append(names, node.Name)
	}
	return names
}

// waitForPodOn waits until the pods for node (by their node affinity, as
// they stay unbound) are a single one other than the pod not, and returns
// it.
func waitForPodOn(t *testing.T, ns, node string, not types.UID) skiffcorev1.Pod {
	t.Helper()
	var found skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		pods := podsFor(t, ns, node)
		if len(pods) != 1 || pods[0].UID == not {
			return fmt.Errorf("%d pods for node %s, want one new one", len(pods), node)
		}
		found = pods[0]
		return nil
	})
	return found
}

// podsFor returns the unbound pods for node, by their node affinity.
func podsFor(t *testing.T, ns, node string) []skiffcorev1.Pod {
	t.Helper()
	var pods []skiffcorev1.Pod
	for _, p := range podsByNode(t, ns)[""] {
		if targetNode(&p) == node {
			pods = append(pods, p)
		}
	}
	return pods
}

// checkOnlyPod asserts that the namespace holds one pod, uid.
func checkOnlyPod(t *testing.T, ns string, uid types.UID) {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(ctx(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].UID != uid {
		t.Errorf("pods %v, want only the failed pod %s (its node is in back-off)", list.Items, uid)
	}
}

// setPodStatus writes a pod's status as its node agent would.
func setPodStatus(t *testing.T, pod skiffcorev1.Pod, change func(*corev1.PodStatus)) {
	t.Helper()
	orig := pod.DeepCopy()
	change(&pod.Status)
	if err := env.Client.Status().Patch(ctx(), &pod, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
}

// statusIs checks a status against want, field for field.
func statusIs(want appsv1.DaemonSetStatus) func(appsv1.DaemonSetStatus) error {
	return func(s appsv1.DaemonSetStatus) error {
		if s.String() != want.String() {
			return fmt.Errorf("status\n%s\nwant\n%s", s.String(), want.String())
		}
		return nil
	}
}

// waitForFailedDaemonPodEvents waits until the FailedDaemonPod Warnings
// are exactly want, in any order.
func waitForFailedDaemonPodEvents(t *testing.T, ns string, want []string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		got := map[string]bool{}
		n := 0
		for _, e := range daemonSetEvents(t, ns) {
			if e.Reason == "FailedDaemonPod" && e.Type == corev1.EventTypeWarning {
				got[e.Note] = true
				n++
			}
		}
		for _, note := range want {
			if !got[note] {
				return fmt.Errorf("FailedDaemonPod events %v, want %q", got, want)
			}
		}
		if n != len(want) {
			return fmt.Errorf("%d FailedDaemonPod events, want %d", n, len(want))
		}
		return nil
	})
}
