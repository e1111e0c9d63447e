// Package e2e runs pods for real: a real apiserver (envtest), the node
// agent with the containerd runtime, runc, CNI and skiff's test images.
// It needs root, containerd, runc and the CNI plugins, which `make test`
// installs; under CI=true a missing one fails the suite.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/cni"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// containerd's shims run this test binary as the log driver.
	skiffcontainerd.RunLogDriverIfAsked()
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	testenv.RunSuite(m, "nodeagent/e2e", &env)
}

// The test images, as `make images` builds them.
const (
	busybox = images.Busybox
	echo    = images.Echo
	memhog  = images.Memhog
)

// node is one real node: a private containerd with the test images, a pod
// network on a bridge of its own, and a node agent running it.
type node struct {
	name    string
	daemon  *skiffcontainerd.Daemon
	dir     string
	bridge  string
	podCIDR string
	stop    func()
	runtime *skiffcontainerd.Runtime
}

// startNode starts a node for one test and removes every pod it ran when
// the test ends.
func startNode(t *testing.T) *node {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	hosttest.RequireCommand(t, "runc")
	hosttest.RequireFile(t, "/usr/lib/cni/bridge")
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	imageDir := filepath.Join(root, "bin", "images")
	hosttest.Require(t, exists(filepath.Join(imageDir, "echo.tar")), imageDir+"/*.tar (make images builds them)")

	n := &node{name: "e2e-" + randomHex(3), dir: t.TempDir()}
	n.bridge, n.podCIDR = "ske"+randomHex(4), hosttest.FreeSubnet(t, "10.246").String()
	ctx := context.Background()
	if n.daemon, err = skiffcontainerd.StartDaemon(ctx, "", filepath.Join(n.dir, "containerd"), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.daemon.Stop() })
	n.start(t)
	for _, tar := range []string{"busybox.tar", "echo.tar", "memhog.tar"} {
		if _, err := images.Import(namespaces.WithNamespace(ctx, skiffcontainerd.DefaultNamespace), n.runtime.Client(), filepath.Join(imageDir, tar)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { n.cleanup(t) })
	// No node IPAM runs here: give the node its podCIDR as it would.
	testenv.Eventually(t, 30*time.Second, func() error {
		nd := &skiffcorev1.Node{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: n.name}, nd); err != nil {
			return err
		}
		patch := client.MergeFrom(nd.DeepCopy())
		nd.Spec.PodCIDR, nd.Spec.PodCIDRs = n.podCIDR, []string{n.podCIDR}
		return env.Client.Patch(ctx, nd, patch)
	})
	return n
}

// start runs the node's agent; restart stops it and starts a new one over
// the same containerd and directories, as when the agent's process
// restarts.
func (n *node) start(t *testing.T) {
	t.Helper()
	network, err := skiffcontainerd.NewCNINetwork(cni.Config{StateDir: filepath.Join(n.dir, "agent", "cni"), Bridge: n.bridge})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := skiffcontainerd.New(skiffcontainerd.Config{
		Address: n.daemon.Address, Dir: filepath.Join(n.dir, "agent"),
		Network: network, Images: skiffcontainerd.PullImages(nil),
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
	}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	n.runtime = rt
	host, err := nodeagent.NewHost(env.FastConfig(), nodeagent.Options{
		Nodes: []nodeagent.NodeConfig{{
			Name: n.name, InternalIP: "127.0.0.1", OSImage: "skiff e2e", KernelVersion: "test",
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("110"),
			},
		}},
		NewRuntime:            func(string) nodeagent.Runtime { return rt },
		LeaseRenewInterval:    time.Second,
		StatusUpdateFrequency: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.stop = runAgent(t, host)
}

// runAgent runs the host until stop is called. Unlike testenv.Run it does
// not stop at the test's end on its own: the node's cleanup must delete
// the pods through the agent first, whichever agent runs by then.
func runAgent(t *testing.T, host *nodeagent.Host) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := host.Start(ctx); err != nil {
			t.Errorf("the node agent failed: %v", err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

func (n *node) restart(t *testing.T) {
	t.Helper()
	n.stop()
	_ = n.runtime.Close()
	n.start(t)
}

// cleanup deletes the test's pods and waits until the agent removed them,
// then stops the agent: nothing may be left running.
func (n *node) cleanup(t *testing.T) {
	ctx := context.Background()
	pods := &skiffcorev1.PodList{}
	if err := env.Client.List(ctx, pods); err == nil {
		for i := range pods.Items {
			if pods.Items[i].Spec.NodeName == n.name {
				_ = env.Client.Delete(ctx, &pods.Items[i])
			}
		}
	}
	// A pod object goes once its agent stopped it and removed what it
	// held; the runtime then lists nothing.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		left, err := n.runtime.ListPods(ctx)
		if err == nil && len(left) == 0 && n.podsInAPI() == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	n.stop()
	if left, _ := n.runtime.ListPods(ctx); len(left) != 0 {
		t.Errorf("pods left in containerd after their deletion: %+v", left)
	}
	_ = n.runtime.Close()
	// The node's bridge is the one thing its pods' teardown leaves.
	if out, err := exec.Command("ip", "link", "del", n.bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		t.Errorf("deleting the bridge %s: %v: %s", n.bridge, err, out)
	}
}

// podsInAPI counts the pods bound to the node that the API still holds.
func (n *node) podsInAPI() int {
	pods := &skiffcorev1.PodList{}
	if err := env.Client.List(context.Background(), pods); err != nil {
		return -1
	}
	count := 0
	for i := range pods.Items {
		if pods.Items[i].Spec.NodeName == n.name {
			count++
		}
	}
	return count
}

// pod is a pod bound to the node.
func (n *node) pod(name string, containers ...corev1.Container) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{}
	p.Namespace, p.Name = "default", name+"-"+randomHex(2)
	p.Spec.NodeName = n.name
	p.Spec.Containers = containers
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	p.Spec.TerminationGracePeriodSeconds = ptr(int64(5))
	return p
}

func create(t *testing.T, p *skiffcorev1.Pod) *skiffcorev1.Pod {
	t.Helper()
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatalf("creating pod %s: %v", p.Name, err)
	}
	return p
}

// waitPod waits until check accepts the pod's latest state.
func waitPod(t *testing.T, p *skiffcorev1.Pod, timeout time.Duration, check func(*skiffcorev1.Pod) error) *skiffcorev1.Pod {
	t.Helper()
	got := &skiffcorev1.Pod{}
	testenv.Eventually(t, timeout, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil {
			return err
		}
		return check(got)
	})
	return got
}

func containerStatus(p *skiffcorev1.Pod, name string) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func condition(p *skiffcorev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func running(p *skiffcorev1.Pod) error {
	if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionTrue {
		return fmt.Errorf("pod %s: phase %q, Ready %q", p.Name, p.Status.Phase, condition(p, corev1.PodReady))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

var randMu sync.Mutex

func randomHex(n int) string {
	randMu.Lock()
	defer randMu.Unlock()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomInt(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64()
}
