package daemonset

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers/nodelifecycle"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
)

// timeout bounds every wait: the machine running the suite is shared.
const timeout = 60 * time.Second

// skipLabel, when set on a node, fails the test DaemonSets' required node
// affinity.
const skipLabel = "ds.skiff.dev/skip"

func ctx() context.Context { return context.Background() }

// TestDaemonSet runs the scheduler and the DaemonSet controller in one
// manager; each scenario has its own simulated nodes, told apart by their
// instance type, which its DaemonSet selects.
func TestDaemonSet(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error {
		if err := scheduler.Setup(m, scheduler.Config{}); err != nil {
			return err
		}
		// A node is lost 4s after its last heartbeat (upstream: 50s).
		if err := nodelifecycle.Setup(m, nodelifecycle.Config{NodeMonitorGracePeriod: 4 * time.Second, DefaultTolerationSeconds: 1}); err != nil {
			return err
		}
		return Setup(m)
	})
	t.Run("group", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			test func(*testing.T)
		}{
			{"pods follow nodes as they join, change and get tainted", testFollowsNodes},
			{"a rolling update replaces every pod, then OnDelete waits for deletions", testUpdates},
			{"a surge rolling update starts new pods before stopping old ones", testSurge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.test(t)
			})
		}
	})
}

func testFollowsNodes(t *testing.T) {
	const kind = "ds-follow"
	host := startNodes(t, kind, kind, 3)
	names := host.NodeNames()
	// A node with a taint the daemon does not tolerate gets no pod.
	addTaint(t, names[2], corev1.Taint{Key: "dedicated", Value: "other", Effect: corev1.TaintEffectNoSchedule})

	ns := namespace(t)
	ds := newDaemonSet(t, ns, "agent", kind, nil)
	waitForPods(t, ns, names[:2])
	pods := podsByNode(t, ns)
	for _, n := range names[:2] {
		checkDaemonPod(t, ds, pods[n][0], n)
	}
	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if s.DesiredNumberScheduled != 2 || s.CurrentNumberScheduled != 2 || s.NumberReady != 2 ||
			s.NumberAvailable != 2 || s.UpdatedNumberScheduled != 2 || s.NumberMisscheduled != 0 || s.ObservedGeneration != ds.Generation {
			return fmt.Errorf("status %s", s.String())
		}
		return nil
	})
	var revs appsv1.ControllerRevisionList
	if err := env.Client.List(ctx(), &revs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(revs.Items) != 1 || revs.Items[0].Revision != 1 || !metav1.IsControlledBy(&revs.Items[0], ds) {
		t.Errorf("want one revision 1 controlled by the DaemonSet, got %+v", revs.Items)
	}

	// A node joins: it gets a pod.
	joined := startNodes(t, kind+"-late", kind, 1).NodeNames()[0]
	waitForPods(t, ns, []string{names[0], names[1], joined})

	// A node whose labels stop matching loses its pod.
	setLabel(t, names[0], skipLabel, "true")
	waitForPods(t, ns, []string{names[1], joined})

	waitForEvents(t, ns, map[string]int{"SuccessfulCreate": 3, "SuccessfulDelete": 1})

	// A lost node keeps its pod: the node lifecycle controller taints it
	// unreachable (NoExecute), which daemon pods tolerate for ever.
	kept := podsByNode(t, ns)[names[1]][0].UID
	if err := host.StopNode(names[1]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		var n skiffcorev1.Node
		if err := env.Client.Get(ctx(), types.NamespacedName{Name: names[1]}, &n); err != nil {
			return err
		}
		if !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == corev1.TaintNodeUnreachable && t.Effect == corev1.TaintEffectNoExecute
		}) {
			return fmt.Errorf("node %s has taints %v, waiting for unreachable:NoExecute", n.Name, n.Spec.Taints)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // longer than DefaultTolerationSeconds
	if p := podsByNode(t, ns)[names[1]]; len(p) != 1 || p[0].UID != kept {
		t.Errorf("the lost node's pod was replaced or removed: %v", p)
	}
	// As upstream, the lost node's unreachable:NoSchedule taint (not
	// tolerated) takes it out of the desired nodes; its pod, allowed to
	// continue running, counts as misscheduled.
	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if s.DesiredNumberScheduled != 1 || s.CurrentNumberScheduled != 1 || s.NumberMisscheduled != 1 {
			return fmt.Errorf("status %s", s.String())
		}
		return nil
	})

	// An untolerated NoExecute taint evicts.
	addTaint(t, joined, corev1.Taint{Key: "evict", Effect: corev1.TaintEffectNoExecute})
	waitForPods(t, ns, []string{names[1]})
}

func testUpdates(t *testing.T) {
	const kind = "ds-update"
	names := startNodes(t, kind, kind, 3).NodeNames()
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "rolling", kind, nil)
	waitForPods(t, ns, names)
	before := hashes(t, ns)

	// A new template rolls out to every node.
	update(t, ds, func(ds *skiffappsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "daemon:v2" })
	testenv.Eventually(t, timeout, func() error {
		h := hashes(t, ns)
		if len(h) != 3 || slices.ContainsFunc(h, func(s string) bool { return s == before[0] }) || !allEqual(h) {
			return fmt.Errorf("revision hashes %v (old %s)", h, before[0])
		}
		return nil
	})
	waitForPods(t, ns, names)
	var revs appsv1.ControllerRevisionList
	if err := env.Client.List(ctx(), &revs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var numbers []int64
	for _, r := range revs.Items {
		numbers = append(numbers, r.Revision)
	}
	slices.Sort(numbers)
	if !slices.Equal(numbers, []int64{1, 2}) {
		t.Errorf("revision numbers %v, want [1 2]", numbers)
	}

	// OnDelete: a new template changes nothing until a pod is deleted.
	update(t, ds, func(ds *skiffappsv1.DaemonSet) {
		ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		ds.Spec.Template.Spec.Containers[0].Image = "daemon:v3"
	})
	v2 := hashes(t, ns)[0]
	waitForStatus(t, ds, func(s appsv1.DaemonSetStatus) error {
		if s.ObservedGeneration != ds.Generation || s.UpdatedNumberScheduled != 0 {
			return fmt.Errorf("status %s", s.String())
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if h := hashes(t, ns); len(h) != 3 || !allEqual(h) || h[0] != v2 {
		t.Fatalf("OnDelete replaced pods on its own: hashes %v", h)
	}
	victim := podsByNode(t, ns)[names[0]][0]
	if err := env.Client.Delete(ctx(), &victim); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		p := podsByNode(t, ns)[names[0]]
		if len(p) != 1 || p[0].UID == victim.UID || p[0].Labels[appsv1.ControllerRevisionHashLabelKey] == v2 {
			return fmt.Errorf("pods on %s: %d, want one new-revision replacement", names[0], len(p))
		}
		return nil
	})
	if p := podsByNode(t, ns)[names[1]]; len(p) != 1 || p[0].Labels[appsv1.ControllerRevisionHashLabelKey] != v2 {
		t.Errorf("OnDelete replaced a pod nobody deleted")
	}

	// Back to the first template: its revision becomes the newest.
	update(t, ds, func(ds *skiffappsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "daemon:v1" })
	testenv.Eventually(t, timeout, func() error {
		var rev appsv1.ControllerRevision
		if err := env.Client.Get(ctx(), types.NamespacedName{Namespace: ns, Name: ds.Name + "-" + before[0]}, &rev); err != nil {
			return err
		}
		if rev.Revision != 4 {
			return fmt.Errorf("the first template's revision is numbered %d, want 4", rev.Revision)
		}
		return nil
	})
}

func testSurge(t *testing.T) {
	const kind = "ds-surge"
	names := startNodes(t, kind, kind, 2).NodeNames()
	ns := namespace(t)
	ds := newDaemonSet(t, ns, "surge", kind, func(ds *skiffappsv1.DaemonSet) {
		zero, one := intstr.FromInt32(0), intstr.FromInt32(1)
		ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: &zero, MaxSurge: &one}
		// New pods stay unavailable for 2s, long enough to see the surge.
		ds.Spec.MinReadySeconds = 2
	})
	waitForPods(t, ns, names)
	old := hashes(t, ns)[0]

	update(t, ds, func(ds *skiffappsv1.DaemonSet) { ds.Spec.Template.Spec.Containers[0].Image = "daemon:v2" })
	sawSurge := false
	testenv.Eventually(t, timeout, func() error {
		pods := podsByNode(t, ns)
		for _, n := range names {
			ready := 0
			for i := range pods[n] {
				if podutil.IsReady(&pods[n][i]) {
					ready++
				}
			}
			if ready == 0 {
				t.Errorf("node %s had no ready daemon during a surge update with maxUnavailable 0", n)
			}
			if len(pods[n]) > 2 {
				t.Errorf("node %s had %d daemon pods at once", n, len(pods[n]))
			}
			sawSurge = sawSurge || len(pods[n]) == 2
		}
		if h := hashes(t, ns); len(h) != 2 || !allEqual(h) || h[0] == old {
			return fmt.Errorf("revision hashes %v (old %s)", h, old)
		}
		return nil
	})
	waitForPods(t, ns, names)
	if !sawSurge {
		t.Errorf("no node was seen with its old and new pod at once")
	}
}

// startNodes runs n simulated nodes prefix-0..n-1 of the given instance
// type until the test ends, and deletes them after.
func startNodes(t *testing.T, prefix, instanceType string, n int) *nodeagent.Host {
	return env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: prefix, Count: n, InstanceType: instanceType})
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ds-"}}
	if err := env.Client.Create(ctx(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// newDaemonSet creates a DaemonSet app=<name> for the nodes of one
// instance type that do not carry skipLabel.
func newDaemonSet(t *testing.T, ns, name, instanceType string, change func(*skiffappsv1.DaemonSet)) *skiffappsv1.DaemonSet {
	t.Helper()
	labels := map[string]string{"app": name}
	ds := &skiffappsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{nodeagent.LabelInstanceType: instanceType},
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
							MatchExpressions: []corev1.NodeSelectorRequirement{{Key: skipLabel, Operator: corev1.NodeSelectorOpDoesNotExist}},
						}}},
					}},
					Containers: []corev1.Container{{Name: "daemon", Image: "daemon:v1"}},
				},
			},
		},
	}
	if change != nil {
		change(ds)
	}
	if err := env.Client.Create(ctx(), ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// podsByNode returns the namespace's pods that are not terminating, by
// spec.nodeName ("" for unbound ones).
func podsByNode(t *testing.T, ns string) map[string][]skiffcorev1.Pod {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(ctx(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]skiffcorev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p)
		}
	}
	return out
}

// waitForPods waits until exactly the given nodes each run one ready pod,
// and no other pod exists (terminating ones aside).
func waitForPods(t *testing.T, ns string, nodes []string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		got := podsByNode(t, ns)
		var where []string
		for n, pods := range got {
			for range pods {
				where = append(where, n)
			}
		}
		sort.Strings(where)
		want := slices.Sorted(slices.Values(nodes))
		if !slices.Equal(where, want) {
			return fmt.Errorf("pods on %q, want one on each of %q", where, want)
		}
		for _, n := range nodes {
			if p := got[n][0]; p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("pod %s on %s is %s", p.Name, n, p.Status.Phase)
			}
		}
		return nil
	})
}

// checkDaemonPod asserts how a daemon pod was built.
func checkDaemonPod(t *testing.T, ds *skiffappsv1.DaemonSet, pod skiffcorev1.Pod, node string) {
	t.Helper()
	if !metav1.IsControlledBy(&pod, ds) {
		t.Errorf("pod %s is not controlled by the DaemonSet: %v", pod.Name, pod.OwnerReferences)
	}
	if pod.Labels[appsv1.ControllerRevisionHashLabelKey] == "" {
		t.Errorf("pod %s has no %s label", pod.Name, appsv1.ControllerRevisionHashLabelKey)
	}
	if got := targetNode(&skiffcorev1.Pod{Spec: corev1.PodSpec{Affinity: pod.Spec.Affinity}}); got != node {
		t.Errorf("pod %s on %s has a node affinity for %q", pod.Name, node, got)
	}
	for _, want := range daemonTolerations {
		if !slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool {
			return tol.Key == want.Key && tol.Effect == want.Effect
		}) {
			t.Errorf("pod %s lacks the toleration %s:%s", pod.Name, want.Key, want.Effect)
		}
	}
}

func waitForStatus(t *testing.T, ds *skiffappsv1.DaemonSet, check func(appsv1.DaemonSetStatus) error) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var cur skiffappsv1.DaemonSet
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(ds), &cur); err != nil {
			return err
		}
		return check(cur.Status)
	})
}

func hashes(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, pods := range podsByNode(t, ns) {
		for _, p := range pods {
			out = append(out, p.Labels[appsv1.ControllerRevisionHashLabelKey])
		}
	}
	return out
}

func allEqual(s []string) bool {
	for _, v := range s {
		if v != s[0] {
			return false
		}
	}
	return true
}

// update edits the DaemonSet, retrying on conflicts, and refreshes ds.
func update(t *testing.T, ds *skiffappsv1.DaemonSet, change func(*skiffappsv1.DaemonSet)) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(ds), ds); err != nil {
			return err
		}
		change(ds)
		return env.Client.Update(ctx(), ds)
	})
}

// patchNode applies a merge patch to a node.
func patchNode(t *testing.T, name string, change func(*skiffcorev1.Node)) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var n skiffcorev1.Node
		if err := env.Client.Get(ctx(), types.NamespacedName{Name: name}, &n); err != nil {
			return err
		}
		orig := n.DeepCopy()
		change(&n)
		return env.Client.Patch(ctx(), &n, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	})
}

func addTaint(t *testing.T, node string, taint corev1.Taint) {
	patchNode(t, node, func(n *skiffcorev1.Node) { n.Spec.Taints = append(n.Spec.Taints, taint) })
}

func setLabel(t *testing.T, node, key, value string) {
	patchNode(t, node, func(n *skiffcorev1.Node) { n.Labels[key] = value })
}

// waitForEvents waits until the namespace holds at least the given number
// of events of each reason about the DaemonSet.
func waitForEvents(t *testing.T, ns string, want map[string]int) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		got := map[string]int{}
		for _, e := range daemonSetEvents(t, ns) {
			got[e.Reason]++
		}
		for reason, n := range want {
			if got[reason] < n {
				return fmt.Errorf("events %v, want at least %v", got, want)
			}
		}
		return nil
	})
}

// daemonSetEvents returns the namespace's events about DaemonSets from the
// DaemonSet controller.
func daemonSetEvents(t *testing.T, ns string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(ctx(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "DaemonSet" && e.ReportingController == "daemonset-controller" {
			out = append(out, e)
		}
	}
	return out
}
