package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

// benchNode is the node the pods scenario runs its pods on.
const benchNode = "bench-node"

// runPods measures how fast the node agent starts real pods: o.pods pods
// created one after another on one node, each timed from its creation to
// Running and Ready; the same image started as often with `ctr run`, as the
// lower bound; then the agent's CPU and memory while it keeps them, idle.
// It needs root, containerd, runc and the CNI plugins.
func runPods(ctx context.Context, o options) (table, error) {
	t := table{title: fmt.Sprintf("pod start: %d pods on one node, real containers", o.pods)}
	if os.Geteuid() != 0 {
		return t, fmt.Errorf("the pods scenario runs real containers: run it as root")
	}
	b, err := newBenchCluster(ctx, o)
	if err != nil {
		return t, err
	}
	defer b.stop()
	d, err := skiffcontainerd.StartDaemon(ctx, "", filepath.Join(b.dir, "containerd"), nil)
	if err != nil {
		return t, err
	}
	defer func() { _ = d.Stop() }()
	if err := importImages(ctx, d.Address, o.bin); err != nil {
		return t, err
	}

	lower, err := ctrRunLatencies(ctx, d.Address, o.pods)
	if err != nil {
		return t, err
	}
	agent, err := b.start("nodeagent", "nodeagent", "--node-name="+benchNode, "--runtime=containerd",
		"--containerd-address="+d.Address, "--root-dir="+filepath.Join(b.dir, "agent"), "--cni-bridge=skbench0")
	if err != nil {
		return t, err
	}
	defer agent.stop()
	// The pods' bridge outlives the agent; the benchmark removes it.
	defer func() { _ = exec.Command("ip", "link", "del", "skbench0").Run() }()
	if err := giveNodePodCIDR(ctx, b.client, "10.250.0.0/24"); err != nil {
		return t, err
	}
	// The node is Ready once its pod network is: pods go to it only then.
	if err := waitForNodes(ctx, b.client, 1, nodeReady); err != nil {
		return t, err
	}
	latencies, err := podStartLatencies(ctx, b.client, o.pods)
	if err != nil {
		return t, fmt.Errorf("%w (agent log: %s)", err, agent.log)
	}
	defer deletePods(b.client, o.pods)

	p50, p99 := percentile(latencies, 50), percentile(latencies, 99)
	l50, l99 := percentile(lower, 50), percentile(lower, 99)
	t.add("pod start, created to Running and Ready, p50 / p99", "%s / %s", ms(p50), ms(p99))
	t.add("`ctr run -d` of the same image (lower bound), p50 / p99", "%s / %s", ms(l50), ms(l99))
	t.add("ratio of p99 to the lower bound's p99 (target ≤ 2)", "%.2f", float64(p99)/float64(l99))

	idle, err := idleUsage(ctx, agent, 30*time.Second)
	if err != nil {
		return t, err
	}
	t.add(fmt.Sprintf("node agent idle with %d pods: CPU (30 s window)", o.pods), "%.1f%% of a core", idle.cpuShare*100)
	t.add(fmt.Sprintf("node agent idle with %d pods: RSS", o.pods), "%d MiB", idle.rss>>20)
	return t, nil
}

// importImages loads the test images (`make images`) into containerd.
func importImages(ctx context.Context, address, bin string) error {
	c, err := containerd.New(address)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = images.ImportDir(namespaces.WithNamespace(ctx, skiffcontainerd.DefaultNamespace), c, filepath.Join(bin, "images"))
	return err
}

// ctrRunLatencies starts n containers of the echo image with containerd's
// own CLI, one after another, each timed until `ctr run -d` returns with
// the task started: the least any runtime on containerd can take.
func ctrRunLatencies(ctx context.Context, address string, n int) ([]time.Duration, error) {
	ctr := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ctr", append([]string{"-a", address, "-n", "ctr-bench"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr %v: %w: %s", args, err, out)
		}
		return nil
	}
	if err := importForCtr(ctx, address); err != nil {
		return nil, err
	}
	var out []time.Duration
	for i := range n {
		id := fmt.Sprintf("lower-bound-%d", i)
		start := time.Now()
		if err := ctr("run", "-d", images.Echo, id); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		defer func() {
			_ = ctr("task", "kill", "-s", "SIGKILL", id)
			time.Sleep(100 * time.Millisecond)
			_ = ctr("task", "delete", id)
			_ = ctr("container", "delete", id)
		}()
	}
	return out, nil
}

// importForCtr makes the echo image present in ctr's namespace too.
func importForCtr(ctx context.Context, address string) error {
	c, err := containerd.New(address)
	if err != nil {
		return err
	}
	defer c.Close()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	_, err = images.Import(namespaces.WithNamespace(ctx, "ctr-bench"), c, filepath.Join(root, "bin", "images", "echo.tar"))
	return err
}

// giveNodePodCIDR waits for the agent's Node and sets its podCIDR, as node
// IPAM would (no manager runs in this scenario).
func giveNodePodCIDR(ctx context.Context, c client.Client, cidr string) error {
	for {
		n := &skiffcorev1.Node{}
		err := c.Get(ctx, client.ObjectKey{Name: benchNode}, n)
		if err == nil {
			patch := client.MergeFrom(n.DeepCopy())
			n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
			return c.Patch(ctx, n, patch)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node agent's Node never registered: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// podStartLatencies creates n echo pods on the node one after another and
// times each from its creation to Running and Ready.
func podStartLatencies(ctx context.Context, c client.Client, n int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range n {
		p := benchPod(i)
		start := time.Now()
		if err := c.Create(ctx, p); err != nil {
			return nil, err
		}
		if err := waitReady(ctx, c, client.ObjectKeyFromObject(p)); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func benchPod(i int) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{}
	p.Namespace, p.Name = "default", fmt.Sprintf("start-%02d", i)
	p.Spec.NodeName = benchNode
	p.Spec.Containers = []corev1.Container{{Name: "web", Image: images.Echo}}
	return p
}

// waitReady polls the pod until it is Running and Ready. Polling every
// 10 ms adds at most that to each figure, less than a watch's delivery.
func waitReady(ctx context.Context, c client.Client, key types.NamespacedName) error {
	for {
		p := &skiffcorev1.Pod{}
		if err := c.Get(ctx, key, p); err == nil && p.Status.Phase == corev1.PodRunning && podutil.IsReady(p) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s never became Ready", key)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// deletePods deletes the scenario's pods, so that the agent stops them
// before it exits.
func deletePods(c client.Client, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		_ = c.Delete(ctx, benchPod(i))
	}
	for {
		pods := &skiffcorev1.PodList{}
		if err := c.List(ctx, pods); err != nil || len(pods.Items) == 0 || ctx.Err() != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// idleUse is a process's CPU share and resident memory over a window.
type idleUse struct {
	cpuShare float64
	rss      int64
}

func idleUsage(ctx context.Context, p *process, window time.Duration) (idleUse, error) {
	before, err := p.usage()
	if err != nil {
		return idleUse{}, err
	}
	select {
	case <-ctx.Done():
		return idleUse{}, ctx.Err()
	case <-time.After(window):
	}
	after, err := p.usage()
	if err != nil {
		return idleUse{}, err
	}
	return idleUse{cpuShare: float64(after.cpu-before.cpu) / float64(window), rss: after.rss}, nil
}

// percentile is the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
