package uptest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/api"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// How long a cluster gets for each step: up builds nothing itself but
// starts etcd, the apiserver, the manager and a containerd per node.
const (
	upTimeout    = 5 * time.Minute
	readyTimeout = 2 * time.Minute
	stopTimeout  = 3 * time.Minute
)

// ClusterConfig is a multi-node cluster's private names and ranges, apart
// from a user's `make up`.
type ClusterConfig struct {
	Nodes       int    // how many nodes (up's --nodes)
	Prefix      string // node names Prefix-1..N (up's --node-name); the node bridge is Prefix+"0", the CNI bridge Prefix+"cni0"
	NodeNetwork string // up's --node-network, e.g. "10.251.0.0/24"
	ClusterCIDR string // up's --cluster-cidr
	ServiceCIDR string // up's --service-cidr
	AgentPort   int    // up's --nodeagent-port
	Samples     string // up's --samples; "" applies none
	WorkPrefix  string // os.MkdirTemp pattern of the work dir, e.g. "skiff-e2e-network-"
}

// NodeBridge is the host's bridge the nodes are linked to; up names the
// nodes' network namespaces after it too.
func (cfg ClusterConfig) NodeBridge() string { return cfg.Prefix + "0" }

// CNIBridge is the pods' bridge in each node; up names its nftables tables
// after it.
func (cfg ClusterConfig) CNIBridge() string { return cfg.Prefix + "cni0" }

// validate refuses a config whose names would not keep the cluster apart:
// an empty Prefix or WorkPrefix would make the leftovers check match
// anything on the machine.
func (cfg ClusterConfig) validate() error {
	switch {
	case cfg.Nodes < 1:
		return fmt.Errorf("ClusterConfig.Nodes: must be >= 1, got %d", cfg.Nodes)
	case cfg.Prefix == "":
		return errors.New("ClusterConfig.Prefix: must be set, to name the nodes and bridges apart from a user's `make up`")
	case strings.TrimRight(cfg.WorkPrefix, "*") == "":
		return fmt.Errorf("ClusterConfig.WorkPrefix: must name the work dir, got %q", cfg.WorkPrefix)
	}
	return nil
}

// upArgs are up's flags for the cluster: its names and ranges, its state
// dir, the binaries built from the checkout at root, and the free ports of
// the apiserver, etcd and the manager.
func (cfg ClusterConfig) upArgs(root, state string, bins Binaries, ports [3]int) []string {
	return []string{
		fmt.Sprintf("--nodes=%d", cfg.Nodes), "--node-name=" + cfg.Prefix,
		"--state-dir=" + state, "--bin=" + filepath.Join(root, "bin"),
		"--manager=" + bins.Manager, "--nodeagent=" + bins.NodeAgent, "--samples=" + cfg.Samples,
		"--node-bridge=" + cfg.NodeBridge(), "--node-network=" + cfg.NodeNetwork,
		"--cluster-cidr=" + cfg.ClusterCIDR, "--service-cidr=" + cfg.ServiceCIDR, "--cni-bridge=" + cfg.CNIBridge(),
		fmt.Sprintf("--port=%d", ports[0]), fmt.Sprintf("--etcd-port=%d", ports[1]), fmt.Sprintf("--manager-port=%d", ports[2]),
		fmt.Sprintf("--nodeagent-port=%d", cfg.AgentPort),
	}
}

// Cluster is a running multi-node skiff.
type Cluster struct {
	Config     ClusterConfig
	Work       string // the work dir: binaries and state
	State      string // up's --state-dir (Work/state): kubeconfig, logs
	Kubeconfig string // State/kubeconfig, the admin's
	Bins       Binaries
	Run        *Run
	Client     client.Client // the admin, with skiff's scheme (api.NewScheme())
	Nodes      []Node        // Ready, sorted by name
}

// Node is one of the cluster's nodes, as its Node object tells.
type Node struct{ Name, IP string }

// Agent is a node agent process of the cluster.
type Agent struct {
	Pid  int
	Args []string
}

// StartCluster builds up, the manager and the node agent from the checkout
// the test runs in, starts the cluster and waits until every Node is Ready
// with a podCIDR. When up started but the cluster did not come ready, it
// is stopped again and the error names the state dir, which is kept.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Config: cfg}
	if c.Work, err = os.MkdirTemp("", cfg.WorkPrefix); err != nil {
		return nil, err
	}
	c.State = filepath.Join(c.Work, "state")
	c.Kubeconfig = filepath.Join(c.State, "kubeconfig")
	if c.Bins, err = Build(root, c.Work); err != nil {
		// Before up runs there is nothing to keep.
		return nil, errors.Join(err, os.RemoveAll(c.Work))
	}
	began := time.Now()
	if err := c.startUp(root); err != nil {
		return nil, fmt.Errorf("%w\n(the state, with the logs, is kept in %s)", err, c.State)
	}
	if err := c.waitUntilReady(); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	fmt.Fprintf(os.Stderr, "%s: %d nodes Ready %s after starting up: %v\n", suiteName(root), len(c.Nodes), time.Since(began).Round(time.Second), c.Nodes)
	return c, nil
}

// startUp runs up on free ports for the apiserver, etcd and the manager.
func (c *Cluster) startUp(root string) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	c.Run, err = Start(root, c.Bins.Up, c.Config.upArgs(root, c.State, c.Bins, [3]int(ports)), upTimeout)
	return err
}

// waitUntilReady connects as the admin and waits for the Ready nodes.
func (c *Cluster) waitUntilReady() error {
	var err error
	if c.Client, err = adminClient(c.Kubeconfig); err != nil {
		return err
	}
	c.Nodes, err = c.waitForReadyNodes(readyTimeout)
	return err
}

// suiteName names the test package that runs the cluster, as its folder
// in the checkout ("test/e2e/network"): go test runs a package in its
// folder.
func suiteName(root string) string {
	wd, err := os.Getwd()
	if err != nil {
		return "uptest"
	}
	rel, err := filepath.Rel(root, wd)
	if err != nil {
		return wd
	}
	return filepath.ToSlash(rel)
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

// waitForReadyNodes waits until Config.Nodes Nodes are Ready with an
// InternalIP and a podCIDR, and returns them sorted by name.
func (c *Cluster) waitForReadyNodes(timeout time.Duration) ([]Node, error) {
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(time.Second) {
		var nodes []Node
		if nodes, last = c.readyNodes(); last == nil {
			return nodes, nil
		}
		if c.Run.Exited() {
			break
		}
	}
	return nil, fmt.Errorf("the nodes are not all Ready after %s: %v; up's output:\n%s", timeout, last, c.Run.Output())
}

func (c *Cluster) readyNodes() ([]Node, error) {
	var list skiffcorev1.NodeList
	if err := c.Client.List(context.Background(), &list); err != nil {
		return nil, err
	}
	var nodes []Node
	for _, n := range list.Items {
		if !NodeReady(&n) || n.Spec.PodCIDR == "" {
			return nil, fmt.Errorf("node %s is not Ready with a podCIDR yet", n.Name)
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				nodes = append(nodes, Node{Name: n.Name, IP: a.Address})
			}
		}
	}
	if len(nodes) != c.Config.Nodes {
		return nil, fmt.Errorf("%d Nodes with an InternalIP, want %d", len(nodes), c.Config.Nodes)
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, nil
}

// NodeReady reports whether a Node's Ready condition is True.
func NodeReady(n *skiffcorev1.Node) bool {
	return slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
}

// Stop stops up with Ctrl-C and checks that nothing of the cluster is left:
// no process, network namespace, link, nftables table, mount or cgroup.
// Anything left is an error, and the state dir is kept for its logs;
// otherwise the work dir is removed.
func (c *Cluster) Stop() error {
	if c == nil || c.Run == nil {
		return nil
	}
	errs := []error{c.Run.Stop(stopTimeout)}
	errs = append(errs, c.leftovers()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\n(the state, with the logs, is kept in %s)", err, c.State)
	}
	return os.RemoveAll(c.Work)
}

// leftovers lists what of the cluster is still on the machine: cgroups of
// its nodes, processes (containerd's shims are not up's children) running
// from the work dir, and network namespaces, links, nftables tables and
// mounts named after its bridges or work dir. It looks only for this
// cluster's names, so that another cluster on the machine goes unnoticed.
func (c *Cluster) leftovers() []error {
	var errs []error
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/skiff/" + c.Config.Prefix + "-*")
	for _, cg := range cgroups {
		errs = append(errs, fmt.Errorf("cgroup left after up stopped: %s", cg))
	}
	for _, pid := range Descendants(1) {
		if args := Cmdline(pid); strings.Contains(strings.Join(args, " "), c.Work) {
			errs = append(errs, fmt.Errorf("process %d left after up stopped: %s", pid, strings.Join(args, " ")))
		}
	}
	names := c.Config.ownNames()
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
		errs = append(errs, linesNaming(check.what, string(out), names)...)
	}
	return errs
}

// ownNames are the strings that only this cluster's network namespaces,
// links, nftables tables and mounts hold: its bridges (up names the netns
// and tables after them) and the fixed part of its work dir's name.
func (cfg ClusterConfig) ownNames() []string {
	work, _, _ := strings.Cut(cfg.WorkPrefix, "*")
	return []string{cfg.NodeBridge(), cfg.CNIBridge(), work}
}

// linesNaming is an error for each line of a listing that holds one of
// names: something of the cluster left after up stopped.
func linesNaming(what, listing string, names []string) []error {
	var errs []error
	for _, line := range strings.Split(listing, "\n") {
		if slices.ContainsFunc(names, func(name string) bool { return strings.Contains(line, name) }) {
			errs = append(errs, fmt.Errorf("%s left after up stopped: %s", what, strings.TrimSpace(line)))
		}
	}
	return errs
}

// Agent finds the node agent of a node among up's processes.
func (c *Cluster) Agent(nodeName string) (Agent, error) {
	for _, pid := range Descendants(c.Run.Pid()) {
		args := Cmdline(pid)
		if len(args) > 0 && filepath.Base(args[0]) == filepath.Base(c.Bins.NodeAgent) && FlagValue(args, "node-name") == nodeName {
			return Agent{Pid: pid, Args: args}, nil
		}
	}
	return Agent{}, fmt.Errorf("no node agent of node %s among up's processes", nodeName)
}
