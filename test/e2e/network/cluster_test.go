package network

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/api"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
)

// The cluster's private names and ranges, apart from a user's `make up`
// (skiffnet0, 10.250.0.0/24, 10.244.0.0/16, 10.96.0.0/16) and from hack/up's
// own test (skupe2e0, 10.249.0.0/16, 10.97.0.0/16).
const (
	nodeCount   = 3
	nodePrefix  = "skne2e"
	nodeBridge  = "skne2e0"
	nodeNetwork = "10.251.0.0/24"
	clusterCIDR = "10.248.0.0/16"
	serviceCIDR = "10.98.0.0/16"
	cniBridge   = "skne2ecni0"
	agentPort   = 29082
)

// cluster is a running multi-node skiff.
type cluster struct {
	work   string
	state  string
	bins   uptest.Binaries
	run    *uptest.Run
	client client.Client
	env    *testenv.Env
	nodes  []node
}

// node is one of the cluster's nodes, as its Node and its agent's command
// line tell.
type node struct {
	name string
	ip   string
}

// startCluster builds up, the manager and the node agent, starts a
// three-node cluster and waits until every Node is Ready.
func startCluster() (c *cluster, err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	c = &cluster{}
	if c.work, err = os.MkdirTemp("", "skiff-e2e-network-"); err != nil {
		return nil, err
	}
	c.state = filepath.Join(c.work, "state")
	if c.bins, err = uptest.Build(root, c.work); err != nil {
		return nil, err
	}
	ports, err := uptest.FreePorts(3)
	if err != nil {
		return nil, err
	}
	args := []string{
		fmt.Sprintf("--nodes=%d", nodeCount), "--node-name=" + nodePrefix,
		"--state-dir=" + c.state, "--bin=" + filepath.Join(root, "bin"),
		"--manager=" + c.bins.Manager, "--nodeagent=" + c.bins.NodeAgent, "--samples=",
		"--node-bridge=" + nodeBridge, "--node-network=" + nodeNetwork,
		"--cluster-cidr=" + clusterCIDR, "--service-cidr=" + serviceCIDR, "--cni-bridge=" + cniBridge,
		fmt.Sprintf("--port=%d", ports[0]), fmt.Sprintf("--etcd-port=%d", ports[1]), fmt.Sprintf("--manager-port=%d", ports[2]),
		fmt.Sprintf("--nodeagent-port=%d", agentPort),
	}
	began := time.Now()
	if c.run, err = uptest.Start(root, c.bins.Up, args, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("%w\n(the state, with the logs, is kept in %s)", err, c.state)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.stop())
		}
	}()
	if c.client, err = adminClient(filepath.Join(c.state, "kubeconfig")); err != nil {
		return c, err
	}
	c.env = &testenv.Env{Client: c.client, Scheme: c.client.Scheme()}
	if c.nodes, err = c.waitForReadyNodes(2 * time.Minute); err != nil {
		return c, err
	}
	fmt.Fprintf(os.Stderr, "test/e2e/network: %d nodes Ready %s after starting up: %v\n", len(c.nodes), time.Since(began).Round(time.Second), c.nodes)
	return c, nil
}

// adminClient talks to the cluster as its administrator, with skiff's kinds.
func adminClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return client.New(cfg, client.Options{Scheme: api.NewScheme()})
}

// waitForReadyNodes waits until nodeCount Nodes are Ready with an
// InternalIP and a podCIDR, and returns them sorted by name.
func (c *cluster) waitForReadyNodes(timeout time.Duration) ([]node, error) {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		var nodes []node
		if nodes, last = c.readyNodes(); last == nil {
			return nodes, nil
		}
		if c.run.Exited() {
			break
		}
	}
	return nil, fmt.Errorf("the nodes are not all Ready after %s: %v; up's output:\n%s", timeout, last, c.run.Output())
}

func (c *cluster) readyNodes() ([]node, error) {
	var list skiffcorev1.NodeList
	if err := c.client.List(context.Background(), &list); err != nil {
		return nil, err
	}
	var nodes []node
	for _, n := range list.Items {
		if !nodeReady(&n) || n.Spec.PodCIDR == "" {
			return nil, fmt.Errorf("node %s is not Ready with a podCIDR yet", n.Name)
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				nodes = append(nodes, node{name: n.Name, ip: a.Address})
			}
		}
	}
	if len(nodes) != nodeCount {
		return nil, fmt.Errorf("%d Nodes with an InternalIP, want %d", len(nodes), nodeCount)
	}
	slices.SortFunc(nodes, func(a, b node) int { return strings.Compare(a.name, b.name) })
	return nodes, nil
}

func nodeReady(n *skiffcorev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

// stop stops up with Ctrl-C and checks that nothing of the cluster is left:
// no process, network namespace, link, nftables table or mount.
func (c *cluster) stop() error {
	if c.run == nil {
		return nil
	}
	errs := []error{c.run.Stop(3 * time.Minute)}
	errs = append(errs, leftovers(c.work)...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\n(the state, with the logs, is kept in %s)", err, c.state)
	}
	return os.RemoveAll(c.work)
}

// leftovers lists what of the cluster is still on the machine: network
// namespaces, links, nftables tables, mounts, cgroups of its nodes, and
// processes (containerd's shims are not up's children) running from work.
func leftovers(work string) []error {
	var errs []error
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/skiff/" + nodePrefix + "-*")
	for _, cg := range cgroups {
		errs = append(errs, fmt.Errorf("cgroup left after up stopped: %s", cg))
	}
	for _, pid := range uptest.Descendants(1) {
		if args := uptest.Cmdline(pid); strings.Contains(strings.Join(args, " "), work) {
			errs = append(errs, fmt.Errorf("process %d left after up stopped: %s", pid, strings.Join(args, " ")))
		}
	}
	for _, check := range []struct {
		what string
		cmd  []string
	}{
		{"network namespaces", []string{"ip", "netns", "list"}},
		{"links", []string{"ip", "-o", "link", "show"}},
		{"nftables tables", []string{"nft", "list", "tables"}},
		{"mounts", []string{"cat", "/proc/self/mounts"}},
	} {
		out, err := exec.Command(check.cmd[0], check.cmd[1:]...).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v: %s", strings.Join(check.cmd, " "), err, out))
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, nodeBridge) || strings.Contains(line, cniBridge) || strings.Contains(line, "skiff-e2e-network-") {
				errs = append(errs, fmt.Errorf("%s left after up stopped: %s", check.what, strings.TrimSpace(line)))
			}
		}
	}
	return errs
}

// agent is a node agent process of the cluster.
type agent struct {
	pid  int
	args []string
}

// agent finds the node agent of a node among up's processes.
func (c *cluster) agent(nodeName string) (agent, error) {
	for _, pid := range uptest.Descendants(c.run.Pid()) {
		args := uptest.Cmdline(pid)
		if len(args) > 0 && filepath.Base(args[0]) == filepath.Base(c.bins.NodeAgent) && uptest.FlagValue(args, "node-name") == nodeName {
			return agent{pid: pid, args: args}, nil
		}
	}
	return agent{}, fmt.Errorf("no node agent of node %s among up's processes", nodeName)
}

// execIn runs a command in the first container of a pod, through the
// containerd of its node, as `kubectl exec` would, and returns its
// standard output; the error holds its standard error.
func (c *cluster) execIn(t *testing.T, pod *skiffcorev1.Pod, cmd ...string) (string, error) {
	t.Helper()
	var current skiffcorev1.Pod
	if err := c.client.Get(context.Background(), client.ObjectKeyFromObject(pod), &current); err != nil {
		return "", err
	}
	if len(current.Status.ContainerStatuses) == 0 || current.Status.ContainerStatuses[0].ContainerID == "" {
		return "", fmt.Errorf("pod %s has no container yet", pod.Name)
	}
	id, ok := strings.CutPrefix(current.Status.ContainerStatuses[0].ContainerID, "containerd://")
	if !ok {
		return "", fmt.Errorf("pod %s: container %q is not containerd's", pod.Name, current.Status.ContainerStatuses[0].ContainerID)
	}
	a, err := c.agent(current.Spec.NodeName)
	if err != nil {
		return "", err
	}
	address, namespace := uptest.FlagValue(a.args, "containerd-address"), uptest.FlagValue(a.args, "containerd-namespace")
	if namespace == "" {
		namespace = "skiff"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctr := exec.CommandContext(ctx, "ctr", append([]string{"-a", address, "-n", namespace, "task", "exec", "--exec-id", "e2e-" + randomSuffix(), id}, cmd...)...)
	var stdout, stderr bytes.Buffer
	ctr.Stdout, ctr.Stderr = &stdout, &stderr
	if err := ctr.Run(); err != nil {
		return stdout.String(), fmt.Errorf("exec %q in pod %s: %w: %s%s", cmd, pod.Name, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
