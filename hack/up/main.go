// Command up is what `make up` runs: it starts skiff locally (etcd,
// kube-apiserver with RBAC and service-account tokens, skiff's CRDs, the
// manager, and one node agent for this machine), applies config/samples,
// prints how to point kubectl at the cluster, and stops everything on Ctrl-C.
// State persists in .skiff/ across restarts.
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
	"strings"
	"syscall"
	"time"
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

	children []*child
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
	flag.IntVar(&u.agentPort, "nodeagent-port", 18082, "the node agent's health port on 127.0.0.1")
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
	flag.DurationVar(&u.startTimeout, "start-timeout", 2*time.Minute, "how long each component may take to become healthy")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	u.ctx = ctx
	if err := u.run(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "make up:", err)
		os.Exit(1)
	}
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
	certs := append(clusterCerts(firstServiceIP(u.serviceCIDR)), nodeAgentCert(u.nodeName))
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
		run  func() error
	}{
		{"starting etcd", u.track(u.startEtcd)},
		{"starting kube-apiserver", u.track(u.startAPIServer)},
		{"installing the CRDs", u.installCRDs},
		{"granting the manager and the node agent their roles", u.grantManager},
		{"starting the manager", u.optional(u.manager, u.track(u.startManager))},
		{"creating the kube-dns Service", u.optional(u.manager, u.applyKubeDNS)},
		{"starting containerd", u.forContainerd(u.track(u.startContainerd))},
		{"loading the test images into containerd", u.forContainerd(u.loadImages)},
		{"starting the node agent", u.optional(u.nodeAgent, u.track(u.startNodeAgent))},
		{"applying " + u.samples, u.optional(u.samples, u.applySamples)},
	}
	for _, s := range steps {
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

// forContainerd runs a step only when the node runs real containers.
func (u *up) forContainerd(step func() error) func() error {
	return func() error {
		if u.runtime != "containerd" || u.nodeAgent == "" {
			return nil
		}
		return step()
	}
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

// optional skips a step whose setting is empty.
func (u *up) optional(setting string, step func() error) func() error {
	return func() error {
		if setting == "" {
			return nil
		}
		return step()
	}
}

// waitForEnd blocks until Ctrl-C (a clean stop) or until a child exits on
// its own (an error naming the child and its log).
func (u *up) waitForEnd() error {
	for {
		for _, c := range u.children {
			if c.exited() {
				return c.failure()
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

// stopAll stops the children in reverse order: the manager before the
// apiserver it talks to, the apiserver before etcd. Once the node agent is
// down, the pods' containers are stopped too (unless --keep-pods), as when
// a node shuts down: the next `make up` starts them again.
func (u *up) stopAll() {
	for i := len(u.children) - 1; i >= 0; i-- {
		u.children[i].stop()
		if u.children[i].name == "nodeagent" && u.runtime == "containerd" && !u.keepPods {
			if err := u.stopPods(); err != nil {
				fmt.Fprintf(os.Stderr, "skiff: stopping the pods' containers: %v\n", err)
			}
			if err := u.removeDatapath(); err != nil {
				fmt.Fprintf(os.Stderr, "skiff: removing the eBPF datapath: %v\n", err)
			}
			if err := u.unmountNodeState(); err != nil {
				fmt.Fprintf(os.Stderr, "skiff: unmounting the pods' namespaces and volumes: %v\n", err)
			}
		}
	}
}

func (u *up) printHowToUse(took time.Duration) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	fmt.Printf(`
skiff is up (in %s).
  export KUBECONFIG=%s
  export PATH=%s:$PATH
  kubectl get skiff -A
Logs: %s   Stop: Ctrl-C
`, took.Round(100*time.Millisecond), abs(u.path("kubeconfig")), abs(u.binDir), abs(u.logDir()))
}

func (u *up) path(elem ...string) string {
	return filepath.Join(append([]string{u.stateDir}, elem...)...)
}
func (u *up) logDir() string         { return u.path("logs") }
func (u *up) pki() pki               { return pki{dir: u.path("pki")} }
func (u *up) bin(name string) string { return filepath.Join(u.binDir, name) }
func (u *up) server() string         { return fmt.Sprintf("https://127.0.0.1:%d", u.port) }

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
