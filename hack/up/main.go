// Command up is what `make up` runs: it starts skiff locally (etcd,
// kube-apiserver with RBAC and service-account tokens, skiff's CRDs, the
// manager, and one node agent for this machine), applies config/samples,
// prints how to point kubectl at the cluster, and stops everything on Ctrl-C.
// State persists in .skiff/ across restarts.
//
// With --nodes=N (N >= 2) it runs N node agents on this one machine, as N
// machines on one switch: each in a network namespace of its own, linked to
// a bridge on the host (internal/nodenet), with one containerd shared by
// all, each node in a containerd namespace and a cgroup of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"skiff.dev/skiff/internal/nodenet"
)

// up holds the settings of one run and the children it started.
type up struct {
	ctx          context.Context
	stateDir     string
	binDir       string
	port         int
	etcdPort     int
	managerPort  int
	agentPort    int
	servePort    int
	dnsPort      int
	serviceCIDR  string
	manager      string
	nodeAgent    string
	nodeName     string
	samples      string
	startTimeout time.Duration
	runtime      string
	containerd   string
	cniBridge    string
	clusterCIDR  string
	keepPods     bool
	nodeCount    int
	nodeNetwork  string
	nodeBridge   string

	// network is the node network of a run with several nodes.
	network   nodenet.Network
	networkUp bool // whether this run created it, so must remove it
	children  []*child
}

func main() {
	u := &up{}
	flag.StringVar(&u.stateDir, "state-dir", ".skiff", "where the cluster keeps its PKI, etcd data, kubeconfigs and logs")
	flag.StringVar(&u.binDir, "bin", "bin", "where etcd, kube-apiserver and kubectl are")
	flag.IntVar(&u.port, "port", 6443, "the apiserver's secure port on 127.0.0.1")
	flag.IntVar(&u.etcdPort, "etcd-port", 12379, "etcd's client port on 127.0.0.1 (the peer port is the next one)")
	flag.IntVar(&u.managerPort, "manager-port", 18080, "the manager's metrics port on 127.0.0.1 (health is the next one)")
	flag.StringVar(&u.serviceCIDR, "service-cidr", "10.96.0.0/16", "the range Services' cluster IPs come from")
	flag.StringVar(&u.manager, "manager", "bin/manager", "the manager binary; empty to start none")
	flag.IntVar(&u.agentPort, "nodeagent-port", 18082, "the node agent's health port on 127.0.0.1, or on each node's address with several (its /metrics is the next one)")
	flag.IntVar(&u.servePort, "nodeagent-serve-port", 10250, "the node agent's HTTPS port for container logs and exec")
	flag.IntVar(&u.dnsPort, "nodeagent-dns-port", 10053, "the port of the node agent's DNS server, on the node's address")
	flag.StringVar(&u.nodeAgent, "nodeagent", "bin/nodeagent", "the node agent binary; empty to start none")
	flag.StringVar(&u.nodeName, "node-name", defaultNodeName(), "the name of this machine's Node")
	flag.StringVar(&u.samples, "samples", "config/samples", "kustomization applied once the cluster is up; empty for none")
	flag.StringVar(&u.runtime, "runtime", "", "the node agent's runtime: containerd or simulated (default: containerd when root and installed)")
	flag.StringVar(&u.containerd, "containerd-address", "", "a running containerd to use (default: the system's, else one started under the state directory)")
	flag.StringVar(&u.cniBridge, "cni-bridge", "skiff0", "the bridge the node's pods are attached to")
	flag.StringVar(&u.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the range nodes' podCIDRs come from")
	flag.BoolVar(&u.keepPods, "keep-pods", false, "leave the pods' containers running on exit, for the next run's node agent to adopt")
	flag.IntVar(&u.nodeCount, "nodes", 1, "how many nodes to run: one runs in this machine's network; several run each in a network namespace of its own, on the node network")
	flag.StringVar(&u.nodeNetwork, "node-network", "10.250.0.0/24", "with --nodes of 2 or more: the nodes' address range; the host takes the first address, node i the (1+i)th")
	flag.StringVar(&u.nodeBridge, "node-bridge", "skiffnet0", "with --nodes of 2 or more: the host's bridge the nodes are linked to; their netns are named BRIDGE-i")
	flag.DurationVar(&u.startTimeout, "start-timeout", 2*time.Minute, "how long each component may take to become healthy")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	u.ctx = ctx
	if err := u.configure(); err != nil {
		fmt.Fprintln(os.Stderr, "make up:", err)
		os.Exit(2)
	}
	if err := u.run(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "make up:", err)
		os.Exit(1)
	}
}

// configure checks the flags that can be wrong together, and settles the
// node network.
func (u *up) configure() error {
	abs, err := filepath.Abs(u.stateDir)
	if err != nil {
		return err
	}
	u.stateDir = abs
	switch {
	case u.nodeCount < 1:
		return fmt.Errorf("--nodes=%d: must be at least 1", u.nodeCount)
	case !u.multiNode():
		return nil
	case u.keepPods:
		// A node's pods are wired to its netns, which the stop deletes.
		return fmt.Errorf("--keep-pods works with one node only: the pods of several nodes lose their network when their nodes' network namespaces go")
	}
	u.network, err = nodenet.New(u.nodeBridge, u.nodeNetwork)
	if err != nil {
		return err
	}
	if c := u.network.Capacity(); u.nodeCount > c {
		return fmt.Errorf("--nodes=%d: the node network %s holds %d nodes; give a larger --node-network", u.nodeCount, u.network.Prefix, c)
	}
	return nil
}

// run brings the cluster up, waits for Ctrl-C or a crash, and tears it down.
func (u *up) run() error {
	for _, dir := range []string{u.stateDir, u.logDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	lock := u.path("up.pid")
	if err := acquireLock(lock); err != nil {
		return err
	}
	defer releaseLock(lock)
	defer u.stopAll()

	began := time.Now()
	if err := u.bringUp(); err != nil {
		return err
	}
	u.printHowToUse(time.Since(began))
	return u.waitForEnd()
}

// bringUp starts each component in order, each once the one before is healthy.
func (u *up) bringUp() error {
	certs := append(clusterCerts(firstServiceIP(u.serviceCIDR), u.apiserverIPs()...), nodeAgentCert(u.nodeName))
	if err := u.pki().ensure(certs); err != nil {
		return fmt.Errorf("creating certificates in %s: %w", u.pki().dir, err)
	}
	for file, user := range map[string]string{"kubeconfig": "admin", "manager.kubeconfig": "manager", "nodeagent.kubeconfig": "nodeagent"} {
		if err := u.pki().writeKubeconfig(u.path(file), u.server(), user); err != nil {
			return err
		}
	}
	u.chooseRuntime()
	steps := []struct {
		what string
		run  func() error // nil: not for this cluster, and not said
	}{
		{"creating the node network " + u.network.Bridge, u.ifMultiNode(u.createNodeNetwork)},
		{"starting etcd", u.track(u.startEtcd)},
		{"starting kube-apiserver", u.track(u.startAPIServer)},
		{"installing the CRDs", u.installCRDs},
		{"granting the manager and the node agent their roles", u.grantManager},
		{"forgetting the nodes of an earlier run that this one does not have", u.forgetDepartedNodes},
		{"starting the manager", u.optional(u.manager, u.track(u.startManager))},
		{"creating the kube-dns Service", u.optional(u.manager, u.applyKubeDNS)},
		{"starting containerd", u.forContainerd(u.track(u.startContainerd))},
		{"loading the test images into containerd", u.forContainerd(u.loadImages)},
		{"creating the nodes' network namespaces", u.ifMultiNode(u.createNodeNetns)},
		{"starting the node agents", u.optional(u.nodeAgent, u.startNodeAgents)},
		{"applying " + u.samples, u.optional(u.samples, u.applySamples)},
	}
	for _, s := range steps {
		if s.run == nil {
			continue
		}
		fmt.Printf("skiff: %s\n", s.what)
		if err := s.run(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// applySamples applies the samples; a sample the cluster refuses is
// reported but does not stop the cluster.
func (u *up) applySamples() error {
	if err := u.kubectl("apply", "-k", u.samples); err != nil {
		fmt.Fprintf(os.Stderr, "skiff: warning: %v\n", err)
	}
	return nil
}

// forContainerd keeps a step only when the nodes run real containers.
func (u *up) forContainerd(step func() error) func() error {
	if u.runtime != "containerd" || u.nodeAgent == "" {
		return nil
	}
	return step
}

// ifMultiNode keeps a step only when there are several nodes.
func (u *up) ifMultiNode(step func() error) func() error {
	if !u.multiNode() {
		return nil
	}
	return step
}

// track records a started child so that it is stopped at the end, even when
// it never became healthy.
func (u *up) track(startChild func() (*child, error)) func() error {
	return func() error {
		c, err := startChild()
		if c != nil {
			u.children = append(u.children, c)
		}
		return err
	}
}

// optional keeps a step only when its setting is not empty.
func (u *up) optional(setting string, step func() error) func() error {
	if setting == "" {
		return nil
	}
	return step
}

// waitForEnd blocks until Ctrl-C (a clean stop) or until a child exits on
// its own (an error naming the child and its log); a node agent that exits
// is started again instead.
func (u *up) waitForEnd() error {
	for {
		for i, c := range u.children {
			if !c.exited() {
				continue
			}
			if !c.restart {
				return c.failure()
			}
			next, err := c.again(u.ctx)
			if err != nil {
				return err
			}
			if next != nil {
				u.children[i] = next
			}
		}
		select {
		case <-u.ctx.Done():
			fmt.Println("\nskiff: stopping")
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopAll stops the children in reverse order: the node agents first (all
// at once, since each may wait for its pods' containers), then the manager
// before the apiserver it talks to, the apiserver before etcd. Once a node
// agent is down, its node shuts down (shutDownNode): its pods' containers
// stop too (unless --keep-pods), and the next `make up` starts them again.
// The node network goes last.
func (u *up) stopAll() {
	var wg sync.WaitGroup
	for _, c := range u.children {
		if c.afterStop != nil {
			wg.Go(func() {
				c.stop()
				c.afterStop()
			})
		}
	}
	wg.Wait()
	for i := len(u.children) - 1; i >= 0; i-- {
		u.children[i].stop()
	}
	if err := u.removeNodeNetwork(); err != nil {
		fmt.Fprintf(os.Stderr, "skiff: removing the node network: %v\n", err)
	}
}

func (u *up) printHowToUse(took time.Duration) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	fmt.Printf(`
skiff is up (in %s).
  export KUBECONFIG=%s
  export PATH=%s:$PATH
  kubectl get skiff -A
%sLogs: %s   Stop: Ctrl-C
`, took.Round(100*time.Millisecond), abs(u.path("kubeconfig")), abs(u.binDir), u.describeNodes(), abs(u.logDir()))
}

func (u *up) path(elem ...string) string {
	return filepath.Join(append([]string{u.stateDir}, elem...)...)
}
func (u *up) logDir() string         { return u.path("logs") }
func (u *up) pki() pki               { return pki{dir: u.path("pki")} }
func (u *up) bin(name string) string { return filepath.Join(u.binDir, name) }
func (u *up) server() string {
	return "https://" + net.JoinHostPort(u.apiserverAddress(), strconv.Itoa(u.port))
}

// apiserverAddress is where the apiserver listens: on loopback for one
// node, and on the host's address on the node bridge for several, since
// the nodes' network namespaces cannot reach the host's loopback. Every
// kubeconfig names it, so one address works for everyone.
func (u *up) apiserverAddress() string {
	if u.multiNode() {
		return u.network.HostIP().String()
	}
	return "127.0.0.1"
}

// apiserverIPs are the addresses the apiserver's serving certificate must
// name besides loopback and the kubernetes Service's.
func (u *up) apiserverIPs() []net.IP {
	if u.multiNode() {
		return []net.IP{net.IP(u.network.HostIP().AsSlice())}
	}
	return nil
}

// defaultNodeName is this machine's hostname, lowercased as Node names are.
func defaultNodeName() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "skiff-node"
	}
	return strings.ToLower(name)
}

// firstServiceIP is the address the apiserver takes for the kubernetes
// Service, which its serving certificate must name.
func firstServiceIP(cidr string) net.IP {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return net.IPv4(10, 96, 0, 1)
	}
	ip := ipnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1)
}
