package nodeagent_test

import (
	"context"
	"fmt"
	goruntime "runtime"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/simulated"
)

// TestSimulatedNodeRegistersAndHeartbeats checks what a node agent
// publishes about its node: labels, capacity, addresses, nodeInfo and
// conditions as upstream's kubelet does, and a Lease that it keeps renewing.
func TestSimulatedNodeRegistersAndHeartbeats(t *testing.T) {
	ctx := context.Background()
	startHost(t, hostOptions(simulated.Options{}, simNode("reg-0", "10.200.0.1")))

	node := &skiffcorev1.Node{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, types.NamespacedName{Name: "reg-0"}, node); err != nil {
			return err
		}
		return nodeReady(node)
	})
	wantLabels := map[string]string{
		"kubernetes.io/hostname": "reg-0", "kubernetes.io/os": goruntime.GOOS,
		"kubernetes.io/arch": goruntime.GOARCH, "node.kubernetes.io/instance-type": "simulated",
	}
	for k, v := range wantLabels {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	for _, rl := range []corev1.ResourceList{node.Status.Capacity, node.Status.Allocatable} {
		if rl.Cpu().String() != "8" || rl.Memory().String() != "32Gi" || rl.Pods().String() != "110" {
			t.Errorf("resources = %v, want cpu 8, memory 32Gi, pods 110", rl)
		}
	}
	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.200.0.1"}, {Type: corev1.NodeHostName, Address: "reg-0"}}
	if fmt.Sprint(node.Status.Addresses) != fmt.Sprint(wantAddrs) {
		t.Errorf("addresses = %v, want %v", node.Status.Addresses, wantAddrs)
	}
	info := node.Status.NodeInfo
	if info.KubeletVersion != nodeagent.KubeletVersion || info.ContainerRuntimeVersion != "simulated://0.1" ||
		info.OSImage != "Skiff Test Linux" || info.KernelVersion != "6.1.0-test" ||
		info.OperatingSystem != goruntime.GOOS || info.Architecture != goruntime.GOARCH {
		t.Errorf("nodeInfo = %+v", info)
	}
	for _, c := range node.Status.Conditions {
		want := map[corev1.NodeConditionType]string{
			corev1.NodeReady: "True/KubeletReady", corev1.NodeMemoryPressure: "False/KubeletHasSufficientMemory",
			corev1.NodeDiskPressure: "False/KubeletHasNoDiskPressure", corev1.NodePIDPressure: "False/KubeletHasSufficientPID",
		}[c.Type]
		if got := string(c.Status) + "/" + c.Reason; got != want || c.LastHeartbeatTime.IsZero() {
			t.Errorf("condition %s = %s (heartbeat %v), want %s with a heartbeat", c.Type, got, c.LastHeartbeatTime, want)
		}
	}
	if len(node.Status.Conditions) != 4 {
		t.Errorf("conditions = %v, want Ready and the three pressures", node.Status.Conditions)
	}

	// The status is written when it changes or is due, not on every check
	// (once a second here).
	before := node.ResourceVersion
	time.Sleep(3 * time.Second)
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "reg-0"}, node); err != nil {
		t.Fatal(err)
	}
	if node.ResourceVersion != before {
		t.Errorf("the node was written again with nothing changed: %+v", node.Status.Conditions)
	}

	first := lease(t, "reg-0")
	if first.Spec.HolderIdentity == nil || *first.Spec.HolderIdentity != "reg-0" ||
		first.Spec.LeaseDurationSeconds == nil || *first.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("lease spec = %+v, want holder reg-0 and duration 40s", first.Spec)
	}
	if len(first.OwnerReferences) != 1 || first.OwnerReferences[0].UID != node.UID || first.OwnerReferences[0].Kind != "Node" {
		t.Errorf("lease owners = %v, want the Node", first.OwnerReferences)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if l := lease(t, "reg-0"); !l.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
			return fmt.Errorf("renewTime still %v", l.Spec.RenewTime)
		}
		return nil
	})
}

// TestStoppedNodeGoesSilentAndRestartRecovers stops one of two hosted
// nodes: its Lease stops while the other's goes on, and something marking it
// Ready=Unknown is left alone. A restarted host registers it again and sets
// Ready back to True.
func TestStoppedNodeGoesSilentAndRestartRecovers(t *testing.T) {
	ctx := context.Background()
	opts := hostOptions(simulated.Options{}, simNode("stop-0", "10.200.1.1"), simNode("stop-1", "10.200.1.2"))
	host, stop := startHost(t, opts)
	for _, name := range []string{"stop-0", "stop-1"} {
		waitNodeReady(t, name)
	}
	if err := host.StopNode("stop-0"); err != nil {
		t.Fatal(err)
	}
	silent, alive := lease(t, "stop-0").Spec.RenewTime.Time, lease(t, "stop-1").Spec.RenewTime.Time
	markNotReady(t, "stop-0")
	time.Sleep(2 * time.Second)
	if got := lease(t, "stop-0").Spec.RenewTime.Time; !got.Equal(silent) {
		t.Errorf("the stopped node's lease was renewed: %v after %v", got, silent)
	}
	if got := lease(t, "stop-1").Spec.RenewTime.Time; !got.After(alive) {
		t.Errorf("the other node's lease was not renewed: still %v", got)
	}
	node := &skiffcorev1.Node{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "stop-0"}, node); err != nil {
		t.Fatal(err)
	}
	if err := nodeReady(node); err == nil {
		t.Errorf("the stopped node's agent set Ready back to True")
	}

	stop()
	startHost(t, opts)
	waitNodeReady(t, "stop-0")
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := lease(t, "stop-0").Spec.RenewTime.Time; !got.After(silent) {
			return fmt.Errorf("the restarted node's lease is still at %v", got)
		}
		return nil
	})
}

// TestHostRegistersManyNodes registers 200 simulated nodes from one host,
// as `nodeagent --simulate=200` does, each with its own identity.
func TestHostRegistersManyNodes(t *testing.T) {
	ctx := context.Background()
	const n = 200
	nodes, err := simulated.Fleet{Prefix: "many", Count: n, NodeCIDR: "10.201.0.0/16"}.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	opts := hostOptions(simulated.Options{}, nodes...)
	opts.LeaseRenewInterval = 10 * time.Second
	host, _ := startHost(t, opts)
	testenv.Eventually(t, 90*time.Second, func() error {
		list := &skiffcorev1.NodeList{}
		if err := env.Client.List(ctx, list); err != nil {
			return err
		}
		ready := 0
		for i := range list.Items {
			if len(list.Items[i].Name) > 5 && list.Items[i].Name[:5] == "many-" && nodeReady(&list.Items[i]) == nil {
				ready++
			}
		}
		if ready != n || host.Registered() != n {
			return fmt.Errorf("%d of %d nodes ready, %d registered", ready, n, host.Registered())
		}
		return nil
	})
	last := &skiffcorev1.Node{}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: "many-0199"}, last); err != nil {
		t.Fatal(err)
	}
	if info := last.Status.NodeInfo; len(info.MachineID) != 32 || info.SystemUUID == "" || info.BootID == "" ||
		last.Status.Addresses[0].Address != "10.201.0.200" || last.Status.Capacity.Cpu().String() != "32" {
		t.Errorf("many-0199: nodeInfo %+v, addresses %v, capacity %v", info, last.Status.Addresses, last.Status.Capacity)
	}
	leases := &coordinationv1.LeaseList{}
	if err := env.Client.List(ctx, leases, client.InNamespace(nodeagent.LeaseNamespace)); err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, l := range leases.Items {
		if len(l.Name) > 5 && l.Name[:5] == "many-" {
			count++
		}
	}
	if count != n {
		t.Errorf("%d leases, want %d", count, n)
	}
}

func nodeReady(node *skiffcorev1.Node) error {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue && c.Reason == "KubeletReady" {
				return nil
			}
			return fmt.Errorf("node %s Ready=%s (%s)", node.Name, c.Status, c.Reason)
		}
	}
	return fmt.Errorf("node %s has no Ready condition", node.Name)
}

func waitNodeReady(t *testing.T, name string) *skiffcorev1.Node {
	t.Helper()
	node := &skiffcorev1.Node{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, node); err != nil {
			return err
		}
		if err := nodeReady(node); err != nil {
			return err
		}
		// The Lease comes with registration, the status a moment later.
		l := &coordinationv1.Lease{}
		return env.Client.Get(context.Background(), types.NamespacedName{Namespace: nodeagent.LeaseNamespace, Name: name}, l)
	})
	return node
}

// markNotReady does what the node lifecycle controller does to a node whose
// heartbeat stopped.
func markNotReady(t *testing.T, name string) {
	t.Helper()
	node := &skiffcorev1.Node{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			node.Status.Conditions[i].Status = corev1.ConditionUnknown
			node.Status.Conditions[i].Reason = "NodeStatusUnknown"
			node.Status.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	if err := env.Client.Status().Patch(context.Background(), node, patch); err != nil {
		t.Fatal(err)
	}
}

func lease(t *testing.T, name string) *coordinationv1.Lease {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: nodeagent.LeaseNamespace, Name: name}, l); err != nil {
		t.Fatalf("lease of %s: %v", name, err)
	}
	if l.Spec.RenewTime == nil {
		t.Fatalf("lease of %s has no renewTime", name)
	}
	return l
}

// TestStoppedHostLeavesNothingRunning stops a host of 50 nodes and checks
// that its goroutines (a heartbeat per node, the controllers) are gone.
func TestStoppedHostLeavesNothingRunning(t *testing.T) {
	baseline := goruntime.NumGoroutine()
	nodes, err := simulated.Fleet{Prefix: "quit", Count: 50, NodeCIDR: "10.202.0.0/16"}.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	host, stop := startHost(t, hostOptions(simulated.Options{}, nodes...))
	testenv.Eventually(t, 60*time.Second, func() error {
		if n := host.Registered(); n != 50 {
			return fmt.Errorf("%d of 50 nodes registered", n)
		}
		return nil
	})
	if running := goruntime.NumGoroutine(); running < baseline+50 {
		t.Fatalf("%d goroutines with 50 nodes running, %d before: where are the heartbeats?", running, baseline)
	}
	stop()
	// Idle HTTP connections may linger a moment; 50 heartbeats may not.
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := goruntime.NumGoroutine(); n > baseline+20 {
			return fmt.Errorf("%d goroutines after the host stopped, %d before it started", n, baseline)
		}
		return nil
	})
}
