package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// The suite's short periods: a node is Unknown 3s after its last
// heartbeat, and pods without their own toleration leave 2s after that.
var testConfig = Config{NodeMonitorGracePeriod: 3 * time.Second, DefaultTolerationSeconds: 2}

func startController(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error { return setup(m, testConfig, clock.RealClock{}) })
}

// TestHeartbeatLossAndRecovery: a node whose Lease is renewed stays Ready;
// once renewals stop it becomes Ready=Unknown with the unreachable taints
// and a NodeNotReady Event; renewing again with Ready=True clears them.
func TestHeartbeatLossAndRecovery(t *testing.T) {
	startController(t)
	userTaint := corev1.Taint{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	node := createNode(t, "beating", userTaint)

	// Alive for two grace periods: nothing changes.
	stop := keepAlive(t, node.Name)
	time.Sleep(2 * testConfig.NodeMonitorGracePeriod)
	n := getNode(t, node.Name)
	if c := nodeCondition(&n.Status, corev1.NodeReady); c == nil || c.Status != corev1.ConditionTrue {
		t.Fatalf("a node renewing its Lease has Ready %+v, want True", c)
	}
	if len(n.Spec.Taints) != 1 {
		t.Fatalf("a healthy node has taints %v, want only the user's", n.Spec.Taints)
	}

	// Silent: Ready=Unknown, unreachable NoSchedule + NoExecute.
	stop()
	testenv.Eventually(t, 30*time.Second, func() error {
		n := getNode(t, node.Name)
		c := nodeCondition(&n.Status, corev1.NodeReady)
		if c == nil || c.Status != corev1.ConditionUnknown {
			return fmt.Errorf("Ready is %+v, want Unknown", c)
		}
		if c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status." {
			return fmt.Errorf("Ready reason %q message %q", c.Reason, c.Message)
		}
		if mp := nodeCondition(&n.Status, corev1.NodeMemoryPressure); mp == nil || mp.Status != corev1.ConditionUnknown {
			return fmt.Errorf("MemoryPressure is %+v, want Unknown", mp)
		}
		return expectTaints(n, userTaint,
			corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
			corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute})
	})
	n = getNode(t, node.Name)
	for _, taint := range n.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoExecute && taint.TimeAdded == nil {
			t.Fatalf("NoExecute taint %v has no timeAdded", taint)
		}
	}
	waitForEvent(t, "NodeNotReady", node.Name)

	// Back: the agent renews its Lease and reports Ready=True.
	stop = keepAlive(t, node.Name)
	defer stop()
	testenv.Eventually(t, 30*time.Second, func() error {
		return expectTaints(getNode(t, node.Name), userTaint)
	})
}

// TestTaintBasedEviction: on an unreachable node, pods are marked not
// ready; a pod without toleration
// is evicted DefaultTolerationSeconds after the taint (DisruptionTarget,
// then deletion, then an Event); a pod tolerating it for 600s and one
// tolerating it forever stay.
func TestTaintBasedEviction(t *testing.T) {
	ctx := context.Background()
	startController(t)
	node := createNode(t, "doomed")
	stop := keepAlive(t, node.Name)
	plain := createPod(t, "plain", node.Name, nil)
	patient := createPod(t, "patient", node.Name, ptr.To[int64](600))
	loyal := createPod(t, "loyal", node.Name, nil, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute})
	loyal.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if err := env.Client.Status().Update(ctx, loyal); err != nil {
		t.Fatal(err)
	}
	if !podutil.IsReady(loyal) {
		t.Fatal("pod loyal did not keep its Ready=True condition")
	}
	stop()

	// The pods of a node that went silent are marked not ready.
	testenv.Eventually(t, 30*time.Second, func() error {
		var got skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(loyal), &got); err != nil {
			return err
		}
		if c := podutil.Condition(&got.Status, corev1.PodReady); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "NodeNotReady" {
			return fmt.Errorf("pod loyal on a silent node has Ready %+v, want False/NodeNotReady", c)
		}
		return nil
	})

	// The plain pod is marked, then deleted; it stays Terminating because
	// the termination finalizer waits for a node agent that is gone.
	var evicted skiffcorev1.Pod
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(plain), &evicted); err != nil {
			return err
		}
		if evicted.DeletionTimestamp == nil {
			return errors.New("pod plain is not being deleted yet")
		}
		return nil
	})
	c := podutil.Condition(&evicted.Status, corev1.DisruptionTarget)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "DeletionByTaintManager" {
		t.Fatalf("evicted pod's DisruptionTarget condition is %+v, want True/DeletionByTaintManager", c)
	}
	taintAdded := noExecuteTimeAdded(t, getNode(t, node.Name))
	// Both times are stored to the second, so allow one second of rounding.
	if waited := c.LastTransitionTime.Sub(taintAdded); waited < time.Duration(testConfig.DefaultTolerationSeconds-1)*time.Second {
		t.Fatalf("pod plain was evicted %s after the taint, before its default toleration of %ds", waited, testConfig.DefaultTolerationSeconds)
	}
	waitForEvent(t, "TaintManagerEviction", plain.Name)

	// The tolerating pods are still there, a while later.
	time.Sleep(3 * time.Second)
	for _, p := range []*skiffcorev1.Pod{patient, loyal} {
		var got skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(p), &got); err != nil {
			t.Fatal(err)
		}
		if got.DeletionTimestamp != nil || podutil.Condition(&got.Status, corev1.DisruptionTarget) != nil {
			t.Fatalf("pod %s, which tolerates the taint, was evicted", p.Name)
		}
	}
}

// TestUntoleratedTaintEvictsAtOnce: a NoExecute taint a pod does not
// tolerate at all (here one an admin adds) evicts it without waiting.
func TestUntoleratedTaintEvictsAtOnce(t *testing.T) {
	ctx := context.Background()
	startController(t)
	node := createNode(t, "drained")
	stop := keepAlive(t, node.Name)
	defer stop()
	pod := createPod(t, "stubborn", node.Name, nil)
	terminal := createPod(t, "finished", node.Name, nil)
	terminal.Status.Phase = corev1.PodSucceeded
	if err := env.Client.Status().Update(ctx, terminal); err != nil {
		t.Fatal(err)
	}

	updateNode(t, node.Name, func(n *skiffcorev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute})
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		var got skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
			return err
		}
		if got.DeletionTimestamp == nil {
			return errors.New("pod stubborn is not being deleted yet")
		}
		return nil
	})
	// The controller stamped the admin's taint, as the apiserver does for
	// built-in Nodes (the eviction and the stamp are separate writes, in
	// either order), and left the finished pod alone.
	testenv.Eventually(t, 10*time.Second, func() error {
		if noExecuteTimeAdded(t, getNode(t, node.Name)).IsZero() {
			return errors.New("the admin's NoExecute taint got no timeAdded")
		}
		return nil
	})
	var got skiffcorev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(terminal), &got); err != nil {
		t.Fatal(err)
	}
	if got.DeletionTimestamp != nil {
		t.Fatal("a finished pod was evicted")
	}
}

// TestCordon: cordoning adds unschedulable:NoSchedule, uncordoning removes
// it, and other taints stay.
func TestCordon(t *testing.T) {
	startController(t)
	userTaint := corev1.Taint{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}
	node := createNode(t, "cordoned", userTaint)
	stop := keepAlive(t, node.Name)
	defer stop()

	updateNode(t, node.Name, func(n *skiffcorev1.Node) { n.Spec.Unschedulable = true })
	testenv.Eventually(t, 30*time.Second, func() error {
		return expectTaints(getNode(t, node.Name), userTaint, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	})
	updateNode(t, node.Name, func(n *skiffcorev1.Node) { n.Spec.Unschedulable = false })
	testenv.Eventually(t, 30*time.Second, func() error {
		return expectTaints(getNode(t, node.Name), userTaint)
	})
}

// TestRegisteredNode: the controller announces each node once when it
// first sees it, in upstream's words, and not again on its later changes.
func TestRegisteredNode(t *testing.T) {
	startController(t)
	node := createNode(t, "announced")
	stop := keepAlive(t, node.Name)
	defer stop()
	waitForEvent(t, "RegisteredNode", node.Name)

	updateNode(t, node.Name, func(n *skiffcorev1.Node) { n.Labels = map[string]string{"zone": "b"} })
	time.Sleep(2 * time.Second)
	events := eventsAbout(t, node, "RegisteredNode")
	if len(events) != 1 || events[0].Series != nil {
		t.Fatalf("%d RegisteredNode Events (%+v), want one", len(events), events)
	}
	e := events[0]
	if want := "Node announced event: Registered Node announced in Controller"; e.Note != want ||
		e.Type != corev1.EventTypeNormal || e.ReportingController != "node-controller" || e.Regarding.Kind != "Node" {
		t.Errorf("RegisteredNode Event: %s %q by %s about a %s, want Normal %q by node-controller about the Node",
			e.Type, e.Note, e.ReportingController, e.Regarding.Kind, want)
	}
}

// eventsAbout lists the Events with reason about node.
func eventsAbout(t *testing.T, node *skiffcorev1.Node, reason string) []eventsv1.Event {
	t.Helper()
	var out []eventsv1.Event
	for _, e := range env.EventsAbout(t, node.UID) {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestSetupRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		flag string
	}{
		{Config{NodeMonitorGracePeriod: 0, DefaultTolerationSeconds: 300}, "--node-monitor-grace-period"},
		{Config{NodeMonitorGracePeriod: time.Second, DefaultTolerationSeconds: -1}, "--default-toleration-seconds"},
	} {
		mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
		if err != nil {
			t.Fatal(err)
		}
		if err := Setup(mgr, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("Setup(%+v) = %v, want an error naming %s", tc.cfg, err, tc.flag)
		}
	}
}

// createNode creates a Ready node with the given taints and a Lease, and
// deletes both when the test ends.
func createNode(t *testing.T, name string, taints ...corev1.Taint) *skiffcorev1.Node {
	t.Helper()
	ctx := context.Background()
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	node.Spec.Taints = taints
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(ctx, node)
		_ = env.Client.Delete(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: name}})
	})
	now := metav1.Now()
	node.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
	}
	if err := env.Client.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: NodeLeaseNamespace}}
	if err := env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: NodeLeaseNamespace, Name: name},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(name),
			LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime:            ptr.To(metav1.NowMicro()),
		},
	}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	return node
}

// keepAlive plays the node agent: it renews the node's Lease every 500ms
// and reports Ready=True with a fresh heartbeat, until stop is called.
func keepAlive(t *testing.T, name string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	beat := func() error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var lease coordinationv1.Lease
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: NodeLeaseNamespace, Name: name}, &lease); err != nil {
				return err
			}
			lease.Spec.RenewTime = ptr.To(metav1.NowMicro())
			if err := env.Client.Update(ctx, &lease); err != nil {
				return err
			}
			var node skiffcorev1.Node
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &node); err != nil {
				return err
			}
			c := nodeCondition(&node.Status, corev1.NodeReady)
			if c.Status != corev1.ConditionTrue {
				c.LastTransitionTime = metav1.Now()
			}
			c.Status, c.Reason, c.Message, c.LastHeartbeatTime = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", metav1.Now()
			return env.Client.Status().Update(ctx, &node)
		})
	}
	if err := beat(); err != nil {
		t.Fatalf("renewing node %s: %v", name, err)
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := beat(); err != nil && ctx.Err() == nil {
					t.Errorf("renewing node %s: %v", name, err)
				}
			}
		}
	}()
	var stopped bool
	return func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
}

// createPod creates a pod bound to node, held by the termination finalizer
// as a bound pod is, tolerating unreachable:NoExecute for seconds if set, and
// removes it when the test ends.
func createPod(t *testing.T, name, node string, seconds *int64, tolerations ...corev1.Toleration) *skiffcorev1.Pod {
	t.Helper()
	ctx := context.Background()
	if seconds != nil {
		tolerations = append(tolerations, corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds})
	}
	pod := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Finalizers: []string{skiffcorev1.PodTerminationFinalizer}},
		Spec: corev1.PodSpec{
			NodeName:    node,
			Containers:  []corev1.Container{{Name: "app", Image: "busybox"}},
			Tolerations: tolerations,
		},
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

func getNode(t *testing.T, name string) *skiffcorev1.Node {
	t.Helper()
	var n skiffcorev1.Node
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func updateNode(t *testing.T, name string, change func(*skiffcorev1.Node)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := getNode(t, name)
		change(n)
		return env.Client.Update(context.Background(), n)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectTaints checks that the node has exactly these taints, by key,
// value and effect, in any order.
func expectTaints(n *skiffcorev1.Node, want ...corev1.Taint) error {
	if len(n.Spec.Taints) != len(want) {
		return fmt.Errorf("node %s has taints %v, want %v", n.Name, n.Spec.Taints, want)
	}
	for _, w := range want {
		found := false
		for _, got := range n.Spec.Taints {
			found = found || (got.Key == w.Key && got.Value == w.Value && got.Effect == w.Effect)
		}
		if !found {
			return fmt.Errorf("node %s has taints %v, want %v", n.Name, n.Spec.Taints, want)
		}
	}
	return nil
}

// noExecuteTimeAdded is the timeAdded of the node's first NoExecute taint.
func noExecuteTimeAdded(t *testing.T, n *skiffcorev1.Node) time.Time {
	t.Helper()
	for _, taint := range n.Spec.Taints {
		if taint.Effect == corev1.TaintEffectNoExecute {
			if taint.TimeAdded == nil {
				return time.Time{}
			}
			return taint.TimeAdded.Time
		}
	}
	t.Fatalf("node %s has no NoExecute taint: %v", n.Name, n.Spec.Taints)
	return time.Time{}
}

// waitForEvent waits for an Event with reason about the object named name.
func waitForEvent(t *testing.T, reason, name string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		var events eventsv1.EventList
		if err := env.Client.List(context.Background(), &events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == reason && e.Regarding.Name == name {
				return nil
			}
		}
		return fmt.Errorf("no %s Event about %s among %d", reason, name, len(events.Items))
	})
}
