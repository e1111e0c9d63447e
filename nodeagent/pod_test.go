package nodeagent_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/simulated"
)

// TestPodRunsWithOneStatusWrite binds a pod to a simulated node and checks
// that it goes Running and Ready in exactly one status write, with every
// field upstream's kubelet fills, gets the termination finalizer, and is
// then left alone: no write while nothing changes.
func TestPodRunsWithOneStatusWrite(t *testing.T) {
	ctx := context.Background()
	startHost(t, hostOptions(simulated.Options{}, simNode("run-0", "10.200.2.1")))
	node := waitNodeReady(t, "run-0")
	setPodCIDR(t, node, "10.244.7.0/24")

	statusWrites, otherWrites, stopWatch := watchPod(t, "default", "web")
	defer stopWatch()
	pod := newPod("web", "run-0", corev1.RestartPolicyAlways)
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "sidecar", Image: "busybox:1.36"})
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, pod, func(p *skiffcorev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || !podutil.IsReady(p) {
			return fmt.Errorf("phase %s, ready %v", p.Status.Phase, podutil.IsReady(p))
		}
		return nil
	})
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if cond := podutil.Condition(&got.Status, c); cond == nil || cond.Status != corev1.ConditionTrue {
			t.Errorf("condition %s = %v, want True", c, cond)
		}
	}
	if ip, err := netip.ParseAddr(got.Status.PodIP); err != nil || !netip.MustParsePrefix("10.244.7.0/24").Contains(ip) ||
		len(got.Status.PodIPs) != 1 || got.Status.PodIPs[0].IP != got.Status.PodIP {
		t.Errorf("podIP %q (podIPs %v), want one address in the node's podCIDR 10.244.7.0/24", got.Status.PodIP, got.Status.PodIPs)
	}
	if got.Status.HostIP != "10.200.2.1" || len(got.Status.HostIPs) != 1 {
		t.Errorf("hostIP %q (hostIPs %v), want the node's 10.200.2.1", got.Status.HostIP, got.Status.HostIPs)
	}
	if got.Status.StartTime == nil || got.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("startTime %v, qosClass %q; want a start time and BestEffort", got.Status.StartTime, got.Status.QOSClass)
	}
	if len(got.Status.ContainerStatuses) != 2 {
		t.Fatalf("containerStatuses = %v, want one per container", got.Status.ContainerStatuses)
	}
	for i, cs := range got.Status.ContainerStatuses {
		if cs.Name != pod.Spec.Containers[i].Name || cs.Image != pod.Spec.Containers[i].Image || cs.ImageID == "" ||
			cs.ContainerID == "" || !cs.Ready || cs.Started == nil || !*cs.Started || cs.State.Running == nil || cs.RestartCount != 0 {
			t.Errorf("container status %+v, want %s running and ready", cs, pod.Spec.Containers[i].Name)
		}
	}
	if !hasFinalizer(got) {
		t.Errorf("finalizers = %v, want %s", got.Finalizers, skiffcorev1.PodTerminationFinalizer)
	}

	// Nothing changes now, so nothing is written.
	time.Sleep(3 * time.Second)
	if n := statusWrites(); n != 1 {
		t.Errorf("%d status writes, want exactly 1 from bound to Running and Ready", n)
	}
	if n := otherWrites(); n != 1 {
		t.Errorf("%d other writes, want 1 (the finalizer)", n)
	}
}

// TestPodsRunToCompletion checks the simulated timetable against the
// restart policy: Never pods succeed or fail with their exit code, and an
// OnFailure pod that fails is restarted.
func TestPodsRunToCompletion(t *testing.T) {
	sim := simulated.Options{RunDuration: time.Second, RestartBackoff: time.Second}
	startHost(t, hostOptions(sim, simNode("done-0", "10.200.3.1")))
	waitNodeReady(t, "done-0")

	cases := []struct {
		name     string
		policy   corev1.RestartPolicy
		exitCode string
		check    func(*skiffcorev1.Pod) error
	}{
		{"never-succeeds", corev1.RestartPolicyNever, "", func(p *skiffcorev1.Pod) error {
			return terminated(p, corev1.PodSucceeded, 0, "Completed")
		}},
		{"never-fails", corev1.RestartPolicyNever, "1", func(p *skiffcorev1.Pod) error {
			return terminated(p, corev1.PodFailed, 1, "Error")
		}},
		{"onfailure-restarts", corev1.RestartPolicyOnFailure, "1", func(p *skiffcorev1.Pod) error {
			if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 2 {
				return fmt.Errorf("containerStatuses %v, want restartCount >= 2", p.Status.ContainerStatuses)
			}
			if last := p.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
				return fmt.Errorf("lastState %v, want exit code 1", p.Status.ContainerStatuses[0].LastTerminationState)
			}
			if p.Status.Phase != corev1.PodRunning {
				return fmt.Errorf("phase %s, want Running while it restarts", p.Status.Phase)
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pod := newPod(tc.name, "done-0", tc.policy)
			if tc.exitCode != "" {
				pod.Annotations = map[string]string{simulated.ExitCodeAnnotation: tc.exitCode, simulated.RunSecondsAnnotation: "0.5"}
			}
			if err := env.Client.Create(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			waitPod(t, pod, tc.check)
		})
	}
}

// TestDeletedPodWaitsForItsAgent deletes a running pod whose agent is
// stopped: the termination finalizer keeps it Terminating. Once the node's
// agent runs again, it stops the pod and lets the object go.
func TestDeletedPodWaitsForItsAgent(t *testing.T) {
	ctx := context.Background()
	opts := hostOptions(simulated.Options{}, simNode("del-0", "10.200.4.1"))
	host, stop := startHost(t, opts)
	waitNodeReady(t, "del-0")
	pod := newPod("doomed", "del-0", corev1.RestartPolicyAlways)
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitPod(t, pod, func(p *skiffcorev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || !hasFinalizer(p) {
			return fmt.Errorf("phase %s, finalizers %v", p.Status.Phase, p.Finalizers)
		}
		return nil
	})

	if err := host.StopNode("del-0"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	held := &skiffcorev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), held); err != nil {
		t.Fatalf("the pod went while its agent was away: %v", err)
	}
	if held.DeletionTimestamp == nil {
		t.Fatalf("the pod is not Terminating")
	}

	stop()
	startHost(t, opts)
	testenv.Eventually(t, 60*time.Second, func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &skiffcorev1.Pod{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("the pod is still there (%v)", err)
	})
}

func newPod(name, node string, policy corev1.RestartPolicy) *skiffcorev1.Pod {
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      node,
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
}

func hasFinalizer(p *skiffcorev1.Pod) bool {
	for _, f := range p.Finalizers {
		if f == skiffcorev1.PodTerminationFinalizer {
			return true
		}
	}
	return false
}

func terminated(p *skiffcorev1.Pod, phase corev1.PodPhase, code int32, reason string) error {
	if p.Status.Phase != phase {
		return fmt.Errorf("phase %s, want %s", p.Status.Phase, phase)
	}
	if len(p.Status.ContainerStatuses) != 1 {
		return fmt.Errorf("containerStatuses %v", p.Status.ContainerStatuses)
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != code || term.Reason != reason {
		return fmt.Errorf("state %+v, want terminated with %d (%s)", p.Status.ContainerStatuses[0].State, code, reason)
	}
	return nil
}

func waitPod(t *testing.T, pod *skiffcorev1.Pod, check func(*skiffcorev1.Pod) error) *skiffcorev1.Pod {
	t.Helper()
	got := &skiffcorev1.Pod{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), got); err != nil {
			return err
		}
		return check(got)
	})
	return got
}

func setPodCIDR(t *testing.T, node *skiffcorev1.Node, cidr string) {
	t.Helper()
	patch := client.MergeFrom(node.DeepCopy())
	node.Spec.PodCIDR, node.Spec.PodCIDRs = cidr, []string{cidr}
	if err := env.Client.Patch(context.Background(), node, patch); err != nil {
		t.Fatal(err)
	}
}

// watchPod counts the writes to one pod, from its creation on: those that
// change its status, and the others.
func watchPod(t *testing.T, namespace, name string) (statusWrites, otherWrites func() int, stop func()) {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &skiffcorev1.PodList{}, client.InNamespace(namespace), client.MatchingFields{"metadata.name": name})
	if err != nil {
		t.Fatal(err)
	}
	counts := make(chan [2]int, 1)
	counts <- [2]int{}
	go func() {
		var last *skiffcorev1.Pod
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*skiffcorev1.Pod)
			if !ok || ev.Type == watch.Bookmark {
				continue
			}
			if ev.Type == watch.Modified && last != nil {
				c := <-counts
				if equality.Semantic.DeepEqual(last.Status, p.Status) {
					c[1]++
				} else {
					c[0]++
				}
				counts <- c
			}
			last = p
		}
	}()
	read := func(i int) int { c := <-counts; counts <- c; return c[i] }
	return func() int { return read(0) }, func() int { return read(1) }, w.Stop
}

// TestRuntimeErrorIsReported gives the simulated runtime a pod it refuses
// (a bad annotation): the pod's containers say why, as upstream's
// CreateContainerError.
func TestRuntimeErrorIsReported(t *testing.T) {
	startHost(t, hostOptions(simulated.Options{}, simNode("err-0", "10.200.6.1")))
	waitNodeReady(t, "err-0")
	pod := newPod("bad-script", "err-0", corev1.RestartPolicyNever)
	pod.Annotations = map[string]string{simulated.ExitCodeAnnotation: "boom"}
	if err := env.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	waitPod(t, pod, func(p *skiffcorev1.Pod) error {
		if len(p.Status.ContainerStatuses) != 1 {
			return fmt.Errorf("containerStatuses %v", p.Status.ContainerStatuses)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		if p.Status.Phase != corev1.PodPending || w == nil || w.Reason != "CreateContainerError" || !strings.Contains(w.Message, simulated.ExitCodeAnnotation) {
			return fmt.Errorf("phase %s, state %+v; want Pending with CreateContainerError naming the annotation", p.Status.Phase, p.Status.ContainerStatuses[0].State)
		}
		return nil
	})
}

// TestRestartedHostLeavesRunningPodsAlone restarts a host: its runtime
// takes over the running pod as the pod reports it, so nothing about the
// pod changes and nothing is written.
func TestRestartedHostLeavesRunningPodsAlone(t *testing.T) {
	ctx := context.Background()
	opts := hostOptions(simulated.Options{}, simNode("adopt-0", "10.200.7.1"))
	_, stop := startHost(t, opts)
	node := waitNodeReady(t, "adopt-0")
	setPodCIDR(t, node, "10.244.8.0/24")
	pod := newPod("steady", "adopt-0", corev1.RestartPolicyAlways)
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	before := waitPod(t, pod, func(p *skiffcorev1.Pod) error {
		if !podutil.IsReady(p) || p.Status.PodIP == "" {
			return fmt.Errorf("ready %v, podIP %q", podutil.IsReady(p), p.Status.PodIP)
		}
		return nil
	})

	// Start times are kept to the second: let one pass, so that a pod
	// started afresh would show.
	time.Sleep(1500 * time.Millisecond)
	stop()
	startHost(t, opts)
	waitNodeReady(t, "adopt-0")
	time.Sleep(3 * time.Second)
	after := &skiffcorev1.Pod{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the restarted agent rewrote a running pod:\nbefore %+v\nafter  %+v", before.Status, after.Status)
	}
}
