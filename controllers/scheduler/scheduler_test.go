package scheduler

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is one test's corner of the shared test cluster: a namespace
// for its pods and a label that its nodes carry and its pods select, so
// that tests never schedule onto each other's nodes.
type cluster struct {
	t     *testing.T
	ns    string
	label map[string]string
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// newCluster starts a manager running only the scheduler and makes the
// test's namespace.
func newCluster(t *testing.T, cfg Config) *cluster {
	t.Helper()
	name := strings.Trim(nonAlnum.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = name[:50]
	}
	c := &cluster{t: t, ns: name, label: map[string]string{"skiff.dev/test": name}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	env.StartManager(t, func(m ctrl.Manager) error { return Setup(m, cfg) })
	return c
}

// node creates a ready node carrying the test's label, and deletes it
// when the test ends.
func (c *cluster) node(name, cpu string, pods int, mutate ...func(*skiffcorev1.Node)) *skiffcorev1.Node {
	c.t.Helper()
	ctx := context.Background()
	n := node(c.ns+"-"+name, cpu, "64Gi", pods, c.label)
	for _, m := range mutate {
		m(n)
	}
	status := n.Status
	if err := env.Client.Create(ctx, n); err != nil {
		c.t.Fatalf("creating node %s: %v", n.Name, err)
	}
	c.t.Cleanup(func() { _ = env.Client.Delete(context.Background(), n) })
	n.Status = status
	for i := range n.Status.Conditions {
		n.Status.Conditions[i].LastHeartbeatTime = metav1.Now()
		n.Status.Conditions[i].LastTransitionTime = metav1.Now()
	}
	if err := env.Client.Status().Update(ctx, n); err != nil {
		c.t.Fatalf("setting node %s's status: %v", n.Name, err)
	}
	return n
}

// pod creates a pending pod in the test's namespace that selects the
// test's nodes.
func (c *cluster) pod(name, cpu string, mutate ...func(*skiffcorev1.Pod)) *skiffcorev1.Pod {
	c.t.Helper()
	p := pod(name, cpu, "", append([]func(*skiffcorev1.Pod){withNodeSelector(c.label)}, mutate...)...)
	p.Namespace, p.UID, p.CreationTimestamp = c.ns, "", metav1.Time{}
	if err := env.Client.Create(context.Background(), p); err != nil {
		c.t.Fatalf("creating pod %s: %v", name, err)
	}
	return p
}

func (c *cluster) get(name string) (*skiffcorev1.Pod, error) {
	p := &skiffcorev1.Pod{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: name}, p)
	return p, err
}

// boundTo waits until the pod is bound and returns its node.
func (c *cluster) boundTo(name string) string {
	c.t.Helper()
	var node string
	testenv.Eventually(c.t, 60*time.Second, func() error {
		p, err := c.get(name)
		if err != nil {
			return err
		}
		if p.Spec.NodeName == "" {
			return fmt.Errorf("pod %s is not bound; status %+v", name, p.Status.Conditions)
		}
		node = p.Spec.NodeName
		return nil
	})
	return node
}

// event waits for an Event with the reason about the named pod and
// returns its note.
func (c *cluster) event(pod, reason string) string {
	c.t.Helper()
	var note string
	testenv.Eventually(c.t, 60*time.Second, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(c.ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == pod && e.Reason == reason {
				note = e.Note
				return nil
			}
		}
		return fmt.Errorf("no %s event for %s among %d", reason, pod, len(list.Items))
	})
	return note
}

// TestBurstFillsNodesExactly creates 500 pods at once for 50 nodes that
// each hold exactly 10 of them: every pod must be bound, with the
// termination finalizer, and no node may be overcommitted, which only
// holds if chosen pods are assumed before their bindings land.
func TestBurstFillsNodesExactly(t *testing.T) {
	c := newCluster(t, Config{})
	const nodes, perNode = 50, 10
	for i := range nodes {
		c.node(fmt.Sprintf("n%02d", i), "1", 110)
	}
	var wg sync.WaitGroup
	names := make(chan string)
	for range 8 {
		wg.Go(func() {
			for name := range names {
				c.pod(name, "100m")
			}
		})
	}
	for i := range nodes * perNode {
		names <- fmt.Sprintf("p%03d", i)
	}
	close(names)
	wg.Wait()

	var list skiffcorev1.PodList
	testenv.Eventually(t, 90*time.Second, func() error {
		if err := env.Client.List(context.Background(), &list, client.InNamespace(c.ns)); err != nil {
			return err
		}
		pending := 0
		for _, p := range list.Items {
			if p.Spec.NodeName == "" {
				pending++
			}
		}
		if pending > 0 || len(list.Items) != nodes*perNode {
			return fmt.Errorf("%d of %d pods pending", pending, len(list.Items))
		}
		return nil
	})
	perNodeCPU := map[string]int64{}
	for _, p := range list.Items {
		if !slices.Contains(p.Finalizers, skiffcorev1.PodTerminationFinalizer) {
			t.Errorf("pod %s was bound without the termination finalizer: %v", p.Name, p.Finalizers)
		}
		req := podutil.Requests(&p)
		perNodeCPU[p.Spec.NodeName] += req.Cpu().MilliValue()
	}
	if len(perNodeCPU) != nodes {
		t.Errorf("pods landed on %d nodes, want %d", len(perNodeCPU), nodes)
	}
	for n, cpu := range perNodeCPU {
		if cpu > 1000 {
			t.Errorf("node %s is overcommitted: %dm requested of 1000m", n, cpu)
		}
	}
	if note := c.event(list.Items[0].Name, "Scheduled"); note != fmt.Sprintf("Successfully assigned %s/%s to %s", c.ns, list.Items[0].Name, list.Items[0].Spec.NodeName) {
		t.Errorf("Scheduled event says %q", note)
	}
}

// TestUnschedulableUntilANodeFits checks the failure report (condition and
// Event, in upstream's words) and that a new node that fits gets the pod.
func TestUnschedulableUntilANodeFits(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("small", "1", 110)
	c.node("gpu", "8", 110, func(n *skiffcorev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	})
	c.pod("big", "2")
	want := "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. " +
		"preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
	testenv.Eventually(t, 60*time.Second, func() error {
		p, err := c.get("big")
		if err != nil {
			return err
		}
		cond := podutil.Condition(&p.Status, corev1.PodScheduled)
		if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != corev1.PodReasonUnschedulable || cond.Message != want {
			return fmt.Errorf("PodScheduled is %+v", cond)
		}
		if p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("an unschedulable pod is in phase %q, want Pending", p.Status.Phase)
		}
		return nil
	})
	if note := c.event("big", "FailedScheduling"); note != want {
		t.Errorf("FailedScheduling says %q, want %q", note, want)
	}
	large := c.node("large", "4", 110)
	if got := c.boundTo("big"); got != large.Name {
		t.Fatalf("bound to %s, want %s", got, large.Name)
	}
}

// TestNodeConditionsAndTolerations checks cordoned, not-ready and tainted
// nodes against a real cluster: a plain pod fits none, a pod tolerating
// the taint goes to the tainted node.
func TestNodeConditionsAndTolerations(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("cordoned", "4", 110, func(n *skiffcorev1.Node) { n.Spec.Unschedulable = true })
	c.node("notready", "4", 110, func(n *skiffcorev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse })
	tainted := c.node("tainted", "4", 110, func(n *skiffcorev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoExecute}}
	})
	c.pod("plain", "")
	want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, " +
		"1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable."
	testenv.Eventually(t, 60*time.Second, func() error {
		p, err := c.get("plain")
		if err != nil {
			return err
		}
		if cond := podutil.Condition(&p.Status, corev1.PodScheduled); cond == nil || !strings.HasPrefix(cond.Message, want) {
			return fmt.Errorf("PodScheduled is %+v", cond)
		}
		return nil
	})
	c.pod("tolerant", "", withTolerations(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists}))
	if got := c.boundTo("tolerant"); got != tainted.Name {
		t.Fatalf("bound to %s, want %s", got, tainted.Name)
	}
}

// TestPreemption: a high-priority pod (priority from its PriorityClass)
// that fits only if a low-priority pod goes evicts it, is nominated to the
// node, and is bound there once the victim is really gone.
func TestPreemption(t *testing.T) {
	c := newCluster(t, Config{})
	ctx := context.Background()
	for name, value := range map[string]int32{c.ns + "-low": 10, c.ns + "-high": 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if err := env.Client.Create(ctx, pc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), pc) })
	}
	n := c.node("only", "1", 110)
	c.pod("victim", "1", func(p *skiffcorev1.Pod) { p.Spec.PriorityClassName = c.ns + "-low" })
	c.boundTo("victim")
	c.pod("vip", "1", func(p *skiffcorev1.Pod) { p.Spec.PriorityClassName = c.ns + "-high" })

	testenv.Eventually(t, 60*time.Second, func() error {
		v, err := c.get("victim")
		if err != nil {
			return err
		}
		if v.DeletionTimestamp == nil {
			return fmt.Errorf("the victim is not being deleted")
		}
		if cond := podutil.Condition(&v.Status, corev1.DisruptionTarget); cond == nil || cond.Reason != corev1.PodReasonPreemptionByScheduler {
			return fmt.Errorf("the victim's DisruptionTarget is %+v", cond)
		}
		p, err := c.get("vip")
		if err != nil {
			return err
		}
		if p.Status.NominatedNodeName != n.Name || p.Spec.NodeName != "" {
			return fmt.Errorf("vip: nominated %q, bound %q", p.Status.NominatedNodeName, p.Spec.NodeName)
		}
		return nil
	})
	vip, _ := c.get("vip")
	if note := c.event("victim", "Preempted"); note != fmt.Sprintf("Preempted by pod %s on node %s", vip.UID, n.Name) {
		t.Errorf("Preempted event says %q", note)
	}
	// The victim holds its room while it terminates.
	time.Sleep(2 * time.Second)
	if p, _ := c.get("vip"); p.Spec.NodeName != "" {
		t.Fatal("vip was bound while the victim still terminates")
	}
	// The node agent would now remove the finalizer; the test does.
	v, _ := c.get("victim")
	patch := client.MergeFrom(v.DeepCopy())
	v.Finalizers = nil
	if err := env.Client.Patch(ctx, v, patch); err != nil {
		t.Fatal(err)
	}
	if got := c.boundTo("vip"); got != n.Name {
		t.Fatalf("vip bound to %s, want %s", got, n.Name)
	}
}

// TestPodAntiAffinity spreads three pods that refuse to share a node over
// two nodes: two are bound apart, the third waits with upstream's reason.
func TestPodAntiAffinity(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", "4", 110)
	c.node("b", "4", 110)
	web := map[string]string{"app": "web"}
	for _, name := range []string{"w1", "w2"} {
		c.pod(name, "", withLabels(web), withAntiAffinity(corev1.LabelHostname, web))
	}
	if n1, n2 := c.boundTo("w1"), c.boundTo("w2"); n1 == n2 {
		t.Fatalf("both pods on %s", n1)
	}
	c.pod("w3", "", withLabels(web), withAntiAffinity(corev1.LabelHostname, web))
	want := "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. " +
		"preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
	testenv.Eventually(t, 60*time.Second, func() error {
		p, err := c.get("w3")
		if err != nil {
			return err
		}
		if cond := podutil.Condition(&p.Status, corev1.PodScheduled); cond == nil || cond.Message != want {
			return fmt.Errorf("PodScheduled is %+v", cond)
		}
		return nil
	})
}
