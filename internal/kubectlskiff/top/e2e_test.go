package top_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/containertest"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
	"skiff.dev/skiff/nodeagent/server"
)

// The agent's serving certificate is self-signed here: the plugin is told
// not to verify it (podio's tests check that verification).
const insecure = "--insecure-skip-tls-verify-backend"

// startNode runs a real node: a private containerd with the busybox and
// memhog images, and the node agent's server on a local port knowing users
// by the test cluster's client certificates and tokens; and creates its
// Node with 2 CPUs and 4Gi allocatable.
func startNode(t *testing.T) (string, *containerd.Runtime) {
	t.Helper()
	rt, _ := containertest.StartRuntime(t, env.Root)
	ctx := namespaces.WithNamespace(context.Background(), containerd.DefaultNamespace)
	if _, err := images.Import(ctx, rt.Client(), filepath.Join(env.Root, images.TestImagesDir, "memhog.tar")); err != nil {
		t.Fatal(err)
	}
	name := "top-" + rand.String(5)
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", NodeName: name, ClientCAFile: env.ClientCAFile(), Client: env.Client, Runtime: rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the node agent's server", srv.Start)
	_, port, _ := net.SplitHostPort(srv.Addr())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), node) })
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	if err := env.Client.Status().Update(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	return name, rt
}

// runPod creates a pod bound to node with one container "main" and syncs
// it, as the agent would, until it runs.
func runPod(t *testing.T, rt *containerd.Runtime, node, ns, name string, c corev1.Container) *skiffcorev1.Pod {
	t.Helper()
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}}
	c.Name = "main"
	pod.Spec.NodeName, pod.Spec.Containers = node, []corev1.Container{c}
	if err := env.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	containertest.SyncUntilRunning(t, rt, pod, 0)
	return pod
}

// row finds the line of out whose first column is name, split in columns.
func row(out, name string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

// quantity reads "250m" or "64Mi" as a number of its unit.
func quantity(s, unit string) (int, error) {
	v, ok := strings.CutSuffix(s, unit)
	if !ok {
		return 0, fmt.Errorf("%q is not in %s", s, unit)
	}
	return strconv.Atoi(v)
}

// TestTop runs real containers and reads their usage through the plugin
// and the agent's /stats/summary: a busy loop burns more than 100m, a
// memhog holding 64 MiB shows at least 60Mi, and the node has its row.
func TestTop(t *testing.T) {
	node, rt := startNode(t)
	ns := env.Namespace(t, "top")
	k := clitest.New(t, env, ns)
	runPod(t, rt, node, ns, "busy", corev1.Container{Image: images.Busybox, Command: []string{"sh", "-c", "while :; do :; done"}})
	runPod(t, rt, node, ns, "hog", corev1.Container{Image: images.Memhog, Command: []string{"/memhog", "-mb", "64"}})

	testenv.Eventually(t, 60*time.Second, func() error {
		out, errOut, err := k.Run("top", "pod", insecure)
		if err != nil {
			return fmt.Errorf("top pod: %v %s", err, errOut)
		}
		busy, hog := row(out, "busy"), row(out, "hog")
		if len(busy) != 3 || len(hog) != 3 || !strings.HasPrefix(out, "NAME") {
			return fmt.Errorf("top pod printed\n%s\nwant NAME CPU(cores) MEMORY(bytes) and rows busy and hog", out)
		}
		if cpu, err := quantity(busy[1], "m"); err != nil || cpu <= 100 {
			return fmt.Errorf("busy uses %s CPU, want more than 100m:\n%s", busy[1], out)
		}
		if mem, err := quantity(hog[2], "Mi"); err != nil || mem < 60 {
			return fmt.Errorf("hog uses %s memory, want at least 60Mi:\n%s", hog[2], out)
		}
		t.Logf("kubectl skiff top pod:\n%s", out)
		return nil
	})

	t.Run("sorted by cpu, by memory", func(t *testing.T) {
		for by, first := range map[string]string{"cpu": "busy", "memory": "hog"} {
			lines := strings.Split(k.MustRun(t, "top", "pod", "--sort-by="+by, insecure), "\n")
			if len(lines) < 3 || strings.Fields(lines[1])[0] != first {
				t.Errorf("top pod --sort-by=%s:\n%s\nwant %s first", by, strings.Join(lines, "\n"), first)
			}
		}
	})
	t.Run("one pod's containers, by selector, across namespaces", func(t *testing.T) {
		out := k.MustRun(t, "top", "pod", "-l", "app=hog", "--containers", "-A", insecure)
		if h := row(out, "NAMESPACE"); strings.Join(h, " ") != "NAMESPACE POD NAME CPU(cores) MEMORY(bytes)" {
			t.Errorf("header %q", h)
		}
		if r := row(out, ns); len(r) != 5 || r[1] != "hog" || r[2] != "main" || row(out, "busy") != nil {
			t.Errorf("top pod -l app=hog --containers -A:\n%s\nwant hog's container main alone", out)
		}
	})
	t.Run("the node", func(t *testing.T) {
		out := k.MustRun(t, "top", "node", node, insecure)
		t.Logf("kubectl skiff top node:\n%s", out)
		r := row(out, node)
		if row(out, "NAME") == nil || len(r) != 5 {
			t.Fatalf("top node %s:\n%s\nwant its row under NAME CPU(cores) CPU(%%) MEMORY(bytes) MEMORY(%%)", node, out)
		}
		// The node runs the busy pod, so it burns more than 100m of its 2
		// cores; it holds the hog's 64Mi, of its 4Gi.
		cpu, err := quantity(r[1], "m")
		if err != nil || cpu <= 100 || !regexp.MustCompile(`^\d+%$`).MatchString(r[2]) {
			t.Errorf("node CPU %s (%s), want more than 100m and a share", r[1], r[2])
		}
		if mem, err := quantity(r[3], "Mi"); err != nil || mem < 60 || !regexp.MustCompile(`^\d+%$`).MatchString(r[4]) {
			t.Errorf("node memory %s (%s), want at least 60Mi and a share", r[3], r[4])
		}
	})
	t.Run("a pod without metrics", func(t *testing.T) {
		pending := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pending"}}
		pending.Spec.Containers = []corev1.Container{{Name: "main", Image: images.Busybox}}
		if err := env.Client.Create(context.Background(), pending); err != nil {
			t.Fatal(err)
		}
		if _, _, err := k.Run("top", "pod", "pending", insecure); err == nil || !strings.Contains(err.Error(), "Metrics not available for pod "+ns+"/pending") {
			t.Errorf("top pod pending: %v, want metrics not available", err)
		}
	})
	t.Run("a user without nodes/stats", func(t *testing.T) {
		reader := clitest.New(t, env, ns).AsServiceAccount(t, env, "reader", rbacv1.PolicyRule{
			APIGroups: []string{skiffcorev1.GroupVersion.Group}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list"},
		})
		_, _, err := reader.Run("top", "node", node, insecure)
		if err == nil || !strings.Contains(err.Error(), "Forbidden") || !strings.Contains(err.Error(), "subresource=stats") {
			t.Errorf("top node without nodes/stats: %v, want the agent's 403", err)
		}
	})
}
