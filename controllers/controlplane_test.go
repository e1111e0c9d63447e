package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// TestLostNodesPodsAreReplacedElsewhere: a node stops heartbeating; the
// node lifecycle controller marks it unreachable and evicts its pods once
// their default toleration runs out, and the ReplicaSet's replacements are
// scheduled onto the nodes that are left.
func TestLostNodesPodsAreReplacedElsewhere(t *testing.T) {
	startControlPlane(t)
	host := startNodes(t, "lost", 3)
	ns := newNamespace(t)
	rs := newReplicaSet(ns, "web", 6)
	create(t, rs)
	pods := waitForRunning(t, ns, 6)

	victim := pods[0].Spec.NodeName
	onVictim := podsOn(pods, victim)
	if err := host.StopNode(victim); err != nil {
		t.Fatal(err)
	}

	testenv.Eventually(t, 60*time.Second, func() error {
		var node skiffcorev1.Node
		if err := env.Client.Get(ctx(), client.ObjectKey{Name: victim}, &node); err != nil {
			return err
		}
		if !hasTaint(&node, "node.kubernetes.io/unreachable", corev1.TaintEffectNoExecute) {
			return fmt.Errorf("node %s has no unreachable NoExecute taint yet: %v", victim, node.Spec.Taints)
		}
		return nil
	})
	// The taint comes first and the evictions after it: wait for them
	// before counting what runs.
	testenv.Eventually(t, 60*time.Second, func() error {
		for _, name := range onVictim {
			var p skiffcorev1.Pod
			err := env.Client.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &p)
			if err == nil && p.DeletionTimestamp == nil {
				return fmt.Errorf("pod %s on the lost node is not evicted yet", name)
			}
		}
		return nil
	})
	running := waitForRunning(t, ns, 6)
	for _, p := range running {
		if p.Spec.NodeName == victim {
			t.Errorf("pod %s is still counted Running on the lost node %s", p.Name, victim)
		}
	}
}

// TestManagerKilledMidScaleUp kills the manager with SIGKILL while a
// ReplicaSet scales up, starts another, and checks that the ReplicaSet ends
// with exactly its replicas: no pod lost, none created twice.
func TestManagerKilledMidScaleUp(t *testing.T) {
	startNodes(t, "kill", 3)
	ns := newNamespace(t)
	const replicas = 150
	maxSeen := countPodsOverTime(t, ns)

	first := startManagerProcess(t)
	create(t, newReplicaSet(ns, "burst", replicas))
	testenv.Eventually(t, 60*time.Second, func() error {
		if n := len(listPods(t, ns)); n < replicas/4 {
			return fmt.Errorf("%d pods so far", n)
		}
		return nil
	})
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	t.Logf("killed the manager with %d of %d pods created", len(listPods(t, ns)), replicas)

	startManagerProcess(t)
	waitForRunning(t, ns, replicas)
	// A duplicate would appear a moment after the scale-up settles.
	time.Sleep(2 * time.Second)
	if n := len(listPods(t, ns)); n != replicas {
		t.Errorf("the ReplicaSet has %d pods, want exactly %d", n, replicas)
	}
	if m := maxSeen(); m > replicas {
		t.Errorf("%d pods existed at one point, want at most %d", m, replicas)
	}
}

// TestDeletionPropagation deletes a ReplicaSet whose pods run on simulated
// nodes with each of the three propagation policies, through the garbage
// collector and the node agent's termination of the pods.
func TestDeletionPropagation(t *testing.T) {
	startControlPlane(t)
	startNodes(t, "gc", 2)
	cases := []struct {
		policy        metav1.DeletionPropagation
		podsRemain    bool
		ownerWaitsPod bool
	}{
		{metav1.DeletePropagationBackground, false, false},
		{metav1.DeletePropagationForeground, false, true},
		{metav1.DeletePropagationOrphan, true, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			ns := newNamespace(t)
			rs := newReplicaSet(ns, "web", 3)
			create(t, rs)
			waitForRunning(t, ns, 3)

			if err := env.Client.Delete(ctx(), rs, client.PropagationPolicy(tc.policy)); err != nil {
				t.Fatal(err)
			}
			if tc.ownerWaitsPod {
				// In the foreground the owner stays until its pods are gone.
				var got skiffappsv1.ReplicaSet
				if err := env.Client.Get(ctx(), client.ObjectKeyFromObject(rs), &got); err == nil && len(listPods(t, ns)) > 0 &&
					!slices.Contains(got.Finalizers, metav1.FinalizerDeleteDependents) {
					t.Errorf("a foreground deletion left the ReplicaSet without its %s finalizer while pods exist", metav1.FinalizerDeleteDependents)
				}
			}
			testenv.Eventually(t, 60*time.Second, func() error {
				err := env.Client.Get(ctx(), client.ObjectKeyFromObject(rs), &skiffappsv1.ReplicaSet{})
				if !apierrors.IsNotFound(err) {
					return fmt.Errorf("the ReplicaSet is still there (%v)", err)
				}
				pods := listPods(t, ns)
				if tc.podsRemain {
					if len(pods) != 3 {
						return fmt.Errorf("%d pods left, want the 3 orphans", len(pods))
					}
					for _, p := range pods {
						if metav1.GetControllerOf(&p) != nil || p.DeletionTimestamp != nil {
							return fmt.Errorf("pod %s was not orphaned: owners %v, deleting %v", p.Name, p.OwnerReferences, p.DeletionTimestamp)
						}
					}
					return nil
				}
				if len(pods) != 0 {
					return fmt.Errorf("%d pods left", len(pods))
				}
				return nil
			})
		})
	}
}

func ctx() context.Context { return context.Background() }

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "cp-"}}
	if err := env.Client.Create(ctx(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Create(ctx(), o); err != nil {
		t.Fatal(err)
	}
}

func newReplicaSet(ns, name string, replicas int32) *skiffappsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	rs := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	rs.Spec.Replicas = ptr.To(replicas)
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	rs.Spec.Template.Labels = labels
	rs.Spec.Template.Spec.Containers = []corev1.Container{{
		Name: "app", Image: "skiff.dev/test/echo:v1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
		}},
	}}
	return rs
}

func listPods(t *testing.T, ns string) []skiffcorev1.Pod {
	t.Helper()
	var pods skiffcorev1.PodList
	if err := env.Client.List(ctx(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// waitForRunning waits until exactly n active pods in ns are Running and
// Ready, and returns them.
func waitForRunning(t *testing.T, ns string, n int) []skiffcorev1.Pod {
	t.Helper()
	var running []skiffcorev1.Pod
	testenv.Eventually(t, 90*time.Second, func() error {
		running = running[:0]
		active := 0
		for _, p := range listPods(t, ns) {
			if !podutil.IsActive(&p) {
				continue
			}
			active++
			if p.Status.Phase == corev1.PodRunning && podutil.IsReady(&p) {
				running = append(running, p)
			}
		}
		if active != n || len(running) != n {
			return fmt.Errorf("%d active pods, %d Running and Ready, want %d", active, len(running), n)
		}
		return nil
	})
	return running
}

func podsOn(pods []skiffcorev1.Pod, node string) []string {
	var names []string
	for _, p := range pods {
		if p.Spec.NodeName == node {
			names = append(names, p.Name)
		}
	}
	return names
}

func hasTaint(n *skiffcorev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, taint := range n.Spec.Taints {
		if taint.Key == key && taint.Effect == effect {
			return true
		}
	}
	return false
}

// countPodsOverTime watches ns and returns a function that tells the
// largest number of pods that existed at once.
func countPodsOverTime(t *testing.T, ns string) func() int {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx(), &skiffcorev1.PodList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var mu sync.Mutex
	live, most := map[types.UID]bool{}, 0
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*skiffcorev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			switch ev.Type {
			case watch.Added, watch.Modified:
				if p.DeletionTimestamp == nil {
					live[p.UID] = true
				} else {
					delete(live, p.UID)
				}
			case watch.Deleted:
				delete(live, p.UID)
			}
			most = max(most, len(live))
			mu.Unlock()
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return most }
}

// startManagerProcess runs every controller in a child process (this test
// binary, see TestMain), so that the test can kill it with SIGKILL.
func startManagerProcess(t *testing.T) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	kubeconfig, err := env.WriteAdminKubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), managerKubeconfigEnv+"="+kubeconfig)
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("manager log:\n%s", tailLines(string(log), 40))
		}
	})
	return cmd
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
