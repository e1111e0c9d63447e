package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"skiff.dev/skiff/nodeagent"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
)

// node is one node agent that up runs, and where it keeps its state. With
// one node it is this machine, in the host's network namespace; with
// several, node i lives in network namespace i of the node network
// (internal/nodenet) and keeps its state under nodes/<name>.
type node struct {
	name  string
	index int        // 1.. on the node network; 0 for the one node in the host's netns
	ip    netip.Addr // the zero Addr lets the agent find the host's address
	netns string     // the netns's path for nsenter; empty for the host's
	// ctrNamespace is the node's containerd namespace: one containerd
	// serves every node, each in a namespace of its own.
	ctrNamespace string
	dir          string // absolute; holds the agent's root and its eBPF pins
	health       string // host:port of the agent's /readyz, reachable from the host
}

func (n node) rootDir() string   { return filepath.Join(n.dir, "nodeagent") }
func (n node) bpfPinDir() string { return filepath.Join(n.dir, "bpf") }

// servingCert names the agent's serving certificate under pki/.
func (n node) servingCert() string {
	if n.index == 0 {
		return "nodeagent-serving"
	}
	return "nodeagent-serving-" + n.name
}

// addresses are where the agent's server is reached: the node's address,
// or for the one node the host's, which it reports as its InternalIP, and
// loopback.
func (n node) addresses() []net.IP {
	if n.ip.IsValid() {
		return []net.IP{n.ip.AsSlice()}
	}
	return []net.IP{net.ParseIP(nodeagent.HostIP()), net.IPv4(127, 0, 0, 1)}
}

// metrics is host:port of the agent's /metrics, reachable from the host as
// its health is: the port after the health port, on the same address.
func (n node) metrics() string {
	health := netip.MustParseAddrPort(n.health)
	return netip.AddrPortFrom(health.Addr(), health.Port()+1).String()
}

// childName names the agent's process and its log, logs/<childName>.log.
func (n node) childName() string {
	if n.index == 0 {
		return "nodeagent"
	}
	return "nodeagent-" + n.name
}

// cgroup is the cgroup the node's pods live under, and where its Services'
// eBPF hooks attach, so that they apply to its own pods only; empty for the
// one node, whose hooks cover the whole machine.
func (n node) cgroup() string {
	if n.index == 0 {
		return ""
	}
	return "/skiff/" + n.name
}

// multiNode reports whether the nodes live on a node network of their own.
func (u *up) multiNode() bool { return u.nodeCount >= 2 }

// nodes are the nodes of this run.
func (u *up) nodes() []node {
	if !u.multiNode() {
		return []node{{
			name: u.nodeName, ctrNamespace: skiffcontainerd.DefaultNamespace, dir: u.stateDir,
			health: fmt.Sprintf("127.0.0.1:%d", u.agentPort),
		}}
	}
	nodes := make([]node, u.nodeCount)
	for i := range nodes {
		nodes[i] = u.networkNode(i + 1)
	}
	return nodes
}

// networkNode is node i of the node network, as this run names it.
func (u *up) networkNode(i int) node {
	name := fmt.Sprintf("%s-%d", u.nodeName, i)
	ip := u.network.NodeIP(i)
	return node{
		name: name, index: i, ip: ip, netns: u.network.NetnsPath(i),
		ctrNamespace: "skiff-" + name, dir: u.path("nodes", name),
		health: netip.AddrPortFrom(ip, uint16(u.agentPort)).String(),
	}
}

// agentArgs are the flags of a node's agent.
func (u *up) agentArgs(n node) []string {
	args := []string{
		"--kubeconfig=" + u.path("nodeagent.kubeconfig"),
		"--node-name=" + n.name,
		"--health-probe-bind-address=" + n.health,
		"--metrics-bind-address=" + n.metrics(),
	}
	if n.ip.IsValid() {
		args = append(args, "--node-ip="+n.ip.String())
	}
	if u.runtime != "containerd" {
		return append(args, "--runtime=simulated")
	}
	// Its server, which kubectl skiff logs and exec call, is verified with
	// the cluster's CA and knows the admin by its certificate.
	pki := u.pki()
	args = append(args, "--tls-cert-file="+pki.cert(n.servingCert()), "--tls-private-key-file="+pki.key(n.servingCert()),
		"--client-ca-file="+pki.cert("ca"),
		"--runtime=containerd", "--containerd-address="+u.containerd, "--containerd-namespace="+n.ctrNamespace,
		"--root-dir="+n.rootDir(), "--cni-bridge="+u.cniBridge,
		fmt.Sprintf("--port=%d", u.servePort), "--service-cidr="+u.serviceCIDR, "--bpf-pin-dir="+n.bpfPinDir(),
		"--cluster-dns="+u.clusterDNS(), fmt.Sprintf("--dns-port=%d", u.dnsPort),
		"--nodeport-table="+u.nodePortTable(), "--cluster-cidr="+u.clusterCIDR, "--podnet-table="+u.podnetTable())
	if cg := n.cgroup(); cg != "" {
		// Its usage in `top node` is its own cgroup's, not the machine's.
		args = append(args, "--cgroup-root="+cg, "--proxy-cgroup="+cg, "--node-stats-cgroup="+cg)
	}
	return args
}

// startNodeAgents starts every node's agent, each in its node's network
// namespace but in the host's mount namespace (nsenter --net, not `ip netns
// exec`, which would hide the agent's mounts from containerd and runc), and
// waits until each is healthy: its Node is registered.
func (u *up) startNodeAgents() error {
	nodes := u.nodes()
	if err := u.issueServingCerts(nodes); err != nil {
		return err
	}
	started := make([]*child, 0, len(nodes))
	for _, n := range nodes {
		program, args := u.nodeAgent, u.agentArgs(n)
		if n.netns != "" {
			program, args = "nsenter", append([]string{"--net=" + n.netns, "--", u.nodeAgent}, args...)
		}
		c, err := start(n.childName(), u.logDir(), program, args...)
		if err != nil {
			return err
		}
		c.afterStop = func() { u.shutDownNode(n) }
		c.restart = true
		u.children = append(u.children, c)
		started = append(started, c)
	}
	for i, c := range started {
		if err := u.waitHealthy(c, http.DefaultClient, "http://"+nodes[i].health+"/readyz"); err != nil {
			return err
		}
	}
	return nil
}

// issueServingCerts gives each node agent of real containers the serving
// certificate agentArgs names, for its current address.
func (u *up) issueServingCerts(nodes []node) error {
	if u.runtime != "containerd" {
		return nil
	}
	certs := make([]certSpec, 0, len(nodes))
	for _, n := range nodes {
		certs = append(certs, nodeServingCert(n.servingCert(), n.name, n.addresses()))
	}
	return u.pki().ensure(certs)
}

// createNodeNetwork creates the bridge of the node network on the host,
// which the apiserver listens on so that the nodes reach it.
func (u *up) createNodeNetwork() error {
	u.networkUp = true
	return u.network.Setup()
}

// createNodeNetns gives each node its network namespace. A node's netns
// that a run which crashed left behind is a node that lost power: it is
// shut down (its pods' containers stopped, its state unmounted) and
// created anew, as after a reboot. So are the netns of nodes this run no
// longer has.
func (u *up) createNodeNetns() error {
	left, err := u.network.Nodes()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, i := range left {
		n := u.networkNode(i)
		fmt.Printf("skiff: node %s was not shut down cleanly: shutting it down first\n", n.name)
		wg.Go(func() { u.shutDownNode(n) })
	}
	wg.Wait()
	for _, n := range u.nodes() {
		if err := u.network.AddNode(n.index); err != nil {
			return err
		}
	}
	return nil
}

// removeNodeNetwork deletes every node's netns, which takes their pods'
// bridge, routes and nftables tables with it, then the node bridge and the
// host's masquerade table.
func (u *up) removeNodeNetwork() error {
	if !u.networkUp {
		return nil
	}
	var errs []error
	for _, n := range u.nodes() {
		errs = append(errs, u.network.DeleteNode(n.index))
	}
	return errors.Join(append(errs, u.network.Teardown())...)
}

// shutDownNode does for a node whose agent has stopped what its machine's
// shutdown does: its pods' containers stop (unless --keep-pods), its eBPF
// datapath goes, what its agent mounted is unmounted and, on the node
// network, its netns is deleted.
func (u *up) shutDownNode(n node) {
	report := func(what string, err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "skiff: node %s: %s: %v\n", n.name, what, err)
		}
	}
	if u.runtime == "containerd" && !u.keepPods {
		report("stopping the pods' containers", u.stopPods(n.ctrNamespace))
		report("killing the shims left by cut-short task deletes", u.killOrphanShims(n.ctrNamespace))
		report("removing the eBPF datapath", u.removeDatapath(n))
		report("unmounting the pods' namespaces and volumes", unmountUnder(n.rootDir()))
	}
	if n.index > 0 {
		report("deleting its network namespace", u.network.DeleteNode(n.index))
		if u.runtime == "containerd" {
			report("removing its cgroups", removeCgroups(n.cgroup()))
		}
	}
}

// removeCgroups removes a node's cgroup, with its pods' cgroups, in every
// hierarchy, as a reboot does; runc creates them again for the next
// containers. Only cgroups without processes can go: run it once the
// node's containers have stopped.
func removeCgroups(cgroup string) error {
	roots, err := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroup))
	if err != nil {
		return err
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		// Children before their parents.
		for _, dir := range slices.Backward(dirs) {
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		// The parent (/skiff) goes with its last node, of any cluster.
		_ = os.Remove(filepath.Dir(root))
	}
	return errors.Join(errs...)
}

// forgetDepartedNodes deletes the Nodes of an earlier run that this one
// does not have (it had more nodes, or one node where this one has several,
// or the reverse), with their leases, so that the control plane reschedules
// their pods and the other nodes remove their routes to them.
func (u *up) forgetDepartedNodes() error {
	out, err := u.kubectlOutput("get", "nodes.core.skiff.dev", "-o", "jsonpath={.items[*].metadata.name}")
	if err != nil {
		return err
	}
	gone := departedNodes(strings.Fields(out), u.nodeName, u.nodeCount)
	if len(gone) == 0 {
		return nil
	}
	fmt.Printf("skiff: forgetting nodes %v, which this run does not have\n", gone)
	if err := u.kubectl(append([]string{"delete", "nodes.core.skiff.dev", "--ignore-not-found", "--wait=false"}, gone...)...); err != nil {
		return err
	}
	return u.kubectl(append([]string{"delete", "leases.coordination.k8s.io", "-n", "kube-node-lease", "--ignore-not-found"}, gone...)...)
}

// departedNodes picks, among existing Node names, those that an earlier run
// of up with the same node name created and a run of count nodes does not
// have: nodeName-k for k > count, nodeName itself when there are several
// nodes, and every nodeName-k when there is one.
func departedNodes(existing []string, nodeName string, count int) []string {
	var gone []string
	for _, name := range existing {
		if name == nodeName {
			if count >= 2 {
				gone = append(gone, name)
			}
			continue
		}
		rest, ok := strings.CutPrefix(name, nodeName+"-")
		k, err := strconv.Atoi(rest)
		if ok && err == nil && k >= 1 && strconv.Itoa(k) == rest && (count < 2 || k > count) {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	return gone
}

// describeNodes is the nodes' part of the how-to-use text.
func (u *up) describeNodes() string {
	if !u.multiNode() {
		return fmt.Sprintf("Node: %s, in this machine's network\n", u.nodeName)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Nodes, on bridge %s (the host is %s):\n", u.network.Bridge, u.network.HostIP())
	for _, n := range u.nodes() {
		fmt.Fprintf(&b, "  %-24s %-15s nsenter --net=%s\n", n.name, n.ip, n.netns)
	}
	return b.String()
}
