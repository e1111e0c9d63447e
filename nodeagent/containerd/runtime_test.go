package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/uuid"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/images"
)

func TestMain(m *testing.M) {
	// The shims run this test binary as the containers' log driver.
	RunLogDriverIfAsked()
	os.Exit(m.Run())
}

const busyboxImage = "skiff.dev/test/busybox:v1"

// testCgroupRoot is the cgroup the tests' pods live under.
const testCgroupRoot = "/skiff-runtime-test"

// removeTestCgroupRoot removes the tests' cgroup root from every hierarchy
// once its pods are gone (a cgroup with pods left is not removed).
func removeTestCgroupRoot() {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", testCgroupRoot))
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// runtimeEnv is a private containerd with skiff's test images, and a
// runtime on it without a pod network (pods share the host's).
type runtimeEnv struct {
	daemon *Daemon
	dir    string
	rt     *Runtime
}

func startRuntime(t *testing.T) *runtimeEnv {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	hosttest.RequireCommand(t, "runc")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(root, "bin", "images", "busybox.tar")
	hosttest.Require(t, fileExists(tarball), tarball+" (make images builds it)")
	ctx := context.Background()
	dir := t.TempDir()
	d, err := StartDaemon(ctx, "", filepath.Join(dir, "containerd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	// A cgroup root of the tests' own, as each node of a multi-node
	// machine has.
	rt, err := New(Config{Address: d.Address, Dir: filepath.Join(dir, "agent"), CgroupRoot: testCgroupRoot}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	t.Cleanup(removeTestCgroupRoot) // after removeAll: cleanups run last first
	t.Cleanup(func() { removeAll(t, rt) })
	if _, err := images.Import(namespaces.WithNamespace(ctx, DefaultNamespace), rt.Client(), tarball); err != nil {
		t.Fatal(err)
	}
	return &runtimeEnv{daemon: d, dir: dir, rt: rt}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// newPod is a pod with one busybox container running script.
func newPod(name string, policy corev1.RestartPolicy, script string) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{}
	p.Namespace, p.Name, p.UID = "default", name, uuid.NewUUID()
	p.Spec.RestartPolicy = policy
	p.Spec.Containers = []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sh", "-c", script}}}
	return p
}

// syncUntil syncs the pod until done accepts the status, as the agent
// does on each notice, and fails after timeout.
func syncUntil(t *testing.T, rt *Runtime, pod *skiffcorev1.Pod, timeout time.Duration, done func(nodeagent.RuntimePodStatus) bool) nodeagent.RuntimePodStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := rt.SyncPod(context.Background(), pod)
		if err != nil {
			t.Fatalf("SyncPod: %v", err)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: condition not met within %s; last status %+v", pod.Name, timeout, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mainState(st nodeagent.RuntimePodStatus) nodeagent.ContainerStatus {
	if len(st.Containers) == 0 {
		return nodeagent.ContainerStatus{}
	}
	return st.Containers[0]
}

func running(st nodeagent.RuntimePodStatus) bool { return mainState(st).State.Running != nil }

func TestRunLogAndStop(t *testing.T) {
	e := startRuntime(t)
	pod := newPod("logger", corev1.RestartPolicyAlways, `echo "hello from $HOSTNAME"; echo oops >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done`)
	st := syncUntil(t, e.rt, pod, 30*time.Second, running)
	cs := mainState(st)
	if !strings.HasPrefix(cs.ID, "containerd://") || cs.RestartCount != 0 || !cs.Ready {
		t.Errorf("running container: %+v", cs)
	}
	logPath := e.rt.LogPath(pod, "main", 0)
	testenv.Eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		for _, want := range []string{" stdout F hello from logger", " stderr F oops"} {
			if !strings.Contains(string(b), want) {
				return errorf("log %q lacks %q", b, want)
			}
		}
		return nil
	})

	start := time.Now()
	if err := e.rt.KillPod(context.Background(), pod, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a container that exits on SIGTERM took %s to stop", took)
	}
	st, err := e.rt.SyncPod(context.Background(), &skiffcorev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: pod.Spec.Containers}})
	if err != nil {
		t.Fatal(err)
	}
	if term := mainState(st).State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("after KillPod: %+v, want terminated with exit 0", mainState(st).State)
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), "stdout F bye") {
		t.Errorf("the container's SIGTERM handler did not run: log %q", b)
	}
}

// TestGracePeriodEndsInSIGKILL: a container that ignores SIGTERM is killed
// once the grace period is over, not before.
func TestGracePeriodEndsInSIGKILL(t *testing.T) {
	e := startRuntime(t)
	pod := newPod("stubborn", corev1.RestartPolicyAlways, `trap '' TERM; while true; do sleep 0.1; done`)
	syncUntil(t, e.rt, pod, 30*time.Second, running)
	start := time.Now()
	if err := e.rt.KillPod(context.Background(), pod, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*time.Second || took > 6*time.Second {
		t.Errorf("stopping took %s; want the 2s grace period, then SIGKILL", took)
	}
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	st, err := e.rt.SyncPod(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	if term := mainState(st).State.Terminated; term == nil || term.ExitCode != 137 {
		t.Errorf("after the grace period: %+v, want exit 137 (SIGKILL)", mainState(st).State)
	}
}

func TestRestartPolicies(t *testing.T) {
	e := startRuntime(t)
	cases := []struct {
		name    string
		policy  corev1.RestartPolicy
		script  string
		wantRun int32 // restart count once settled
		reason  string
	}{
		{"never-fails", corev1.RestartPolicyNever, "exit 3", 0, "Error"},
		{"onfailure-succeeds", corev1.RestartPolicyOnFailure, "exit 0", 0, "Completed"},
		{"always-crashes", corev1.RestartPolicyAlways, "exit 1", 1, reasonCrashLoopBackOff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(tc.name, tc.policy, tc.script)
			st := syncUntil(t, e.rt, pod, 30*time.Second, func(st nodeagent.RuntimePodStatus) bool {
				s := mainState(st).State
				return (s.Terminated != nil && s.Terminated.Reason == tc.reason) || (s.Waiting != nil && s.Waiting.Reason == tc.reason)
			})
			cs := mainState(st)
			if cs.RestartCount != tc.wantRun {
				t.Errorf("restartCount %d, want %d", cs.RestartCount, tc.wantRun)
			}
			if tc.reason == reasonCrashLoopBackOff {
				// Restarted at once after the first exit; the second waits 10s.
				if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
					t.Errorf("lastState %+v, want the exit with code 1", cs.LastTerminationState)
				}
				if wait := time.Until(st.NextChange); wait < 5*time.Second || wait > 11*time.Second {
					t.Errorf("next restart in %s, want about 10s", wait)
				}
				if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=main") {
					t.Errorf("waiting message %q", cs.State.Waiting.Message)
				}
			}
		})
	}
}

// TestAdoptAfterRestart: a new runtime over the same containerd (an agent
// that restarted) reports the running container as it was, and does not
// start it again.
func TestAdoptAfterRestart(t *testing.T) {
	e := startRuntime(t)
	pod := newPod("adopted", corev1.RestartPolicyAlways, "while true; do sleep 1; done")
	before := mainState(syncUntil(t, e.rt, pod, 30*time.Second, running))

	again, err := New(Config{Address: e.daemon.Address, Dir: filepath.Join(e.dir, "agent")}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	pods, err := again.ListPods(context.Background())
	if err != nil || len(pods) != 1 || pods[0].UID != pod.UID || pods[0].Name != "adopted" {
		t.Fatalf("ListPods after restart: %+v, %v", pods, err)
	}
	after := mainState(syncUntil(t, again, pod, 10*time.Second, running))
	if after.ID != before.ID || !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) || after.RestartCount != 0 {
		t.Errorf("after restart: %+v; want the same run as before: %+v", after, before)
	}
}

// TestRemoveLeavesNothing: after KillPod and RemovePod, nothing of the pod
// is left in containerd, in the cgroup hierarchies or on disk.
func TestRemoveLeavesNothing(t *testing.T) {
	e := startRuntime(t)
	pod := newPod("gone", corev1.RestartPolicyAlways, "while true; do sleep 1; done")
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: mustQuantity("64Mi")}
	syncUntil(t, e.rt, pod, 30*time.Second, running)
	cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.rt.cgroupParent(pod.UID)))
	unified := filepath.Join("/sys/fs/cgroup/unified", e.rt.cgroupParent(pod.UID))
	if !strings.HasPrefix(e.rt.cgroupParent(pod.UID), testCgroupRoot+"/") || !slices.Contains(cgroups, unified) {
		t.Errorf("the pod's cgroups %v: want %s among them, under the cgroup root %s, where a node's eBPF datapath attaches", cgroups, unified, testCgroupRoot)
	}
	if len(cgroups) == 0 {
		t.Fatalf("no cgroup %s for the running pod", e.rt.cgroupParent(pod.UID))
	}
	limit, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", e.rt.cgroupParent(pod.UID), containerID(string(pod.UID), "main", 0), "memory.limit_in_bytes"))
	if err != nil || strings.TrimSpace(string(limit)) != "67108864" {
		t.Errorf("memory limit %q, %v; want 64Mi", limit, err)
	}
	ctx := context.Background()
	if err := e.rt.KillPod(ctx, pod, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.RemovePod(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	cs, err := e.rt.podContainers(e.rt.ctx(ctx), pod.UID)
	if err != nil || len(cs) != 0 {
		t.Errorf("containers left: %d, %v", len(cs), err)
	}
	if left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.rt.cgroupParent(pod.UID))); len(left) != 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if fileExists(e.rt.podDir(pod.UID)) {
		t.Errorf("pod files left in %s", e.rt.podDir(pod.UID))
	}
	if err := e.rt.RemovePod(ctx, pod.UID); err != nil {
		t.Errorf("removing twice: %v", err)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// removeAll kills and removes every pod the runtime holds, so that a test
// leaves no container, shim or cgroup behind.
func removeAll(t *testing.T, rt *Runtime) {
	ctx := context.Background()
	pods, err := rt.ListPods(ctx)
	if err != nil {
		t.Errorf("listing pods to clean up: %v", err)
		return
	}
	for _, p := range pods {
		stale := &skiffcorev1.Pod{}
		stale.UID, stale.Namespace, stale.Name = p.UID, p.Namespace, p.Name
		if err := rt.KillPod(ctx, stale, 0); err != nil {
			t.Errorf("cleaning up pod %s: %v", p.Name, err)
		}
		if err := rt.RemovePod(ctx, p.UID); err != nil {
			t.Errorf("cleaning up pod %s: %v", p.Name, err)
		}
	}
}
