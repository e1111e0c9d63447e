// Command nodeagent is skiff's kubelet. It runs one node on this machine,
// its pods as real containers through containerd (--runtime=containerd),
// or, with --simulate=N, N simulated nodes in one process (as kwok does),
// for tests and benchmarks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/ebpf/nodeport"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/cni"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/dns"
	"skiff.dev/skiff/nodeagent/podnet"
	"skiff.dev/skiff/nodeagent/proxy"
	"skiff.dev/skiff/nodeagent/server"
	"skiff.dev/skiff/nodeagent/simulated"
)

// flags are the agent's command-line settings. --kubeconfig is registered
// by controller-runtime itself.
type flags struct {
	nodeName       string
	nodeIP         string
	runtime        string
	containerd     string
	ctrNamespace   string
	cgroupRoot     string
	proxyCgroup    string
	statsCgroup    string
	clusterCIDR    string
	podnetTable    string
	rootDir        string
	cniBridge      string
	port           int
	tlsCert        string
	tlsKey         string
	clientCAFile   string
	proxyMode      string
	bpfPinDir      string
	serviceCIDR    string
	clusterDNS     string
	clusterDomain  string
	dnsPort        int
	nodePortTable  string
	maxPods        int
	systemReserved string

	simulate        int
	namePrefix      string
	simCPU          string
	simMemory       string
	simMaxPods      int
	simNodeCIDR     string
	simStartDelay   time.Duration
	simRunDuration  time.Duration
	simRestartDelay time.Duration

	leaseDurationSeconds int
	leaseRenewInterval   time.Duration
	statusUpdateFreq     time.Duration
	statusReportFreq     time.Duration
	qps                  float64
	burst                int
	probeAddr            string
	metricsAddr          string
	zap                  zap.Options
}

// bindFlags registers the agent's flags on fs, with upstream's defaults
// where the kubelet has the same setting.
func bindFlags(fs *flag.FlagSet) *flags {
	f := &flags{}
	hostname, _ := os.Hostname()
	fs.StringVar(&f.nodeName, "node-name", strings.ToLower(hostname), "the Node's name (default: the hostname)")
	fs.StringVar(&f.nodeIP, "node-ip", "", "the node's InternalIP (default: the host's first global IPv4 address)")
	fs.StringVar(&f.runtime, "runtime", "simulated", "the container runtime: containerd (real containers) or simulated")
	fs.StringVar(&f.containerd, "containerd-address", "/run/containerd/containerd.sock", "containerd's socket, for --runtime=containerd")
	fs.StringVar(&f.ctrNamespace, "containerd-namespace", skiffcontainerd.DefaultNamespace, "the containerd namespace skiff's containers live in")
	fs.StringVar(&f.cgroupRoot, "cgroup-root", skiffcontainerd.DefaultCgroupRoot, "the cgroup the pods' cgroups live under, in every hierarchy")
	fs.StringVar(&f.proxyCgroup, "proxy-cgroup", "/", "the cgroup2 directory (from the cgroup2 mount) the eBPF Service hooks attach to: / covers host processes and every pod; a node that shares the machine with others passes its --cgroup-root, so that its Services apply to its own pods")
	fs.StringVar(&f.statsCgroup, "node-stats-cgroup", "", "the cgroup whose CPU and memory usage is the node's in /stats/summary (kubectl skiff top node): empty is the whole machine, right for one node per machine; a node that shares the machine with others passes its --cgroup-root")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", "10.244.0.0/16", "the range of every node's podCIDR: the agent routes to other nodes' podCIDRs and masquerades pod traffic leaving it")
	fs.StringVar(&f.podnetTable, "podnet-table", podnet.DefaultTable, "the nftables table of the pods' masquerade rule")
	fs.StringVar(&f.rootDir, "root-dir", "/var/lib/skiff/nodeagent", "where the agent keeps pod files, volumes, container logs and network state")
	fs.StringVar(&f.cniBridge, "cni-bridge", cni.DefaultBridge, "the Linux bridge pods are attached to")
	fs.IntVar(&f.port, "port", server.DefaultPort, "the HTTPS port for container logs and exec (--runtime=containerd); 0 serves none")
	fs.StringVar(&f.tlsCert, "tls-cert-file", "", "the serving certificate for --port (default: a self-signed one)")
	fs.StringVar(&f.tlsKey, "tls-private-key-file", "", "the key of --tls-cert-file")
	fs.StringVar(&f.clientCAFile, "client-ca-file", "", "a CA bundle: callers of --port may present a client certificate it signed (CommonName is the user, Organizations the groups) instead of a bearer token")
	fs.StringVar(&f.proxyMode, "proxy-mode", "ebpf", "how Services are load balanced with --runtime=containerd: ebpf (cgroup socket hooks) or none")
	fs.StringVar(&f.bpfPinDir, "bpf-pin-dir", lb.DefaultPinDir, "the bpffs directory the eBPF datapath is pinned in; it outlives the agent")
	fs.StringVar(&f.serviceCIDR, "service-cidr", "10.96.0.0/16", "the Services' cluster IP range: unknown addresses in it are refused")
	fs.StringVar(&f.clusterDNS, "cluster-dns", "10.96.0.10", "the kube-dns address pods use as their nameserver; the agent answers it on this node; empty gives pods the host's resolv.conf")
	fs.StringVar(&f.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fs.StringVar(&f.nodePortTable, "nodeport-table", nodeport.DefaultTable, "the nftables table NodePorts are kept in; empty serves none")
	fs.IntVar(&f.dnsPort, "dns-port", 10053, "the port the agent's DNS server listens on, on the node's address; --cluster-dns:53 leads to it")
	fs.IntVar(&f.maxPods, "max-pods", nodeagent.DefaultMaxPods, "how many pods this node takes")
	fs.StringVar(&f.systemReserved, "system-reserved", "", "resources kept from pods, e.g. cpu=500m,memory=1Gi")

	fs.IntVar(&f.simulate, "simulate", 0, "host this many simulated nodes instead of this machine's node")
	fs.StringVar(&f.namePrefix, "node-name-prefix", "sim", "simulated nodes are named PREFIX-0000, PREFIX-0001, ...")
	fs.StringVar(&f.simCPU, "simulate-cpu", "32", "each simulated node's CPU capacity")
	fs.StringVar(&f.simMemory, "simulate-memory", "256Gi", "each simulated node's memory capacity")
	fs.IntVar(&f.simMaxPods, "simulate-max-pods", nodeagent.DefaultMaxPods, "how many pods each simulated node takes")
	fs.StringVar(&f.simNodeCIDR, "simulate-node-cidr", "10.200.0.0/16", "the range simulated nodes' InternalIPs come from")
	fs.DurationVar(&f.simStartDelay, "simulate-start-delay", 0, "how long simulated containers take to start")
	fs.DurationVar(&f.simRunDuration, "simulate-run-duration", 2*time.Second, "how long simulated containers of restartPolicy Never or OnFailure pods run")
	fs.DurationVar(&f.simRestartDelay, "simulate-restart-backoff", 10*time.Second, "the first restart back-off of a simulated container, doubled per restart up to 5m")

	fs.IntVar(&f.leaseDurationSeconds, "node-lease-duration-seconds", 40, "the node Lease's leaseDurationSeconds")
	fs.DurationVar(&f.leaseRenewInterval, "node-lease-renew-interval", 10*time.Second, "how often the node Lease is renewed")
	fs.DurationVar(&f.statusUpdateFreq, "node-status-update-frequency", 10*time.Second, "how often the agent checks whether its node's status changed")
	fs.DurationVar(&f.statusReportFreq, "node-status-report-frequency", 5*time.Minute, "how often the node's status is rewritten when nothing changed")
	// A thousand simulated nodes renew a hundred Leases a second on their own.
	fs.Float64Var(&f.qps, "kube-api-qps", 1000, "requests a second the agent may send the apiserver")
	fs.IntVar(&f.burst, "kube-api-burst", 2000, "requests the agent may send the apiserver in a burst")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":10248", "address the /healthz and /readyz endpoints bind to; 0 disables them")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", "0", "address the /metrics endpoint binds to (plain HTTP), e.g. :10255, the kubelet's read-only port, which served its metrics; 0 disables it")
	f.zap.BindFlags(fs)
	return f
}

func main() {
	// containerd's shims run this binary as the containers' log driver.
	skiffcontainerd.RunLogDriverIfAsked()
	f := bindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	opts, rt, err := hostOptions(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(2)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nodeagent: finding the cluster: %v (pass --kubeconfig or set KUBECONFIG)\n", err)
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	if err := run(ctrl.SetupSignalHandler(), cfg, opts, serveLogsAndExec(f, rt), serveDNS(f, rt, opts), runProxy(f, rt, opts), runPodNetwork(f, rt)); err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

// run hosts the nodes until ctx ends, with what each of extras adds to
// the host.
func run(ctx context.Context, cfg *rest.Config, opts nodeagent.Options, extras ...func(*nodeagent.Host) error) error {
	host, err := nodeagent.NewHost(cfg, opts)
	if err != nil {
		return err
	}
	for _, add := range extras {
		if err := add(host); err != nil {
			return err
		}
	}
	ctrl.Log.WithName("setup").Info("starting the node agent", "nodes", len(opts.Nodes), "first", opts.Nodes[0].Name)
	return host.Start(ctx)
}

// serveLogsAndExec adds the logs and exec server to a host of real
// containers; simulated ones have nothing to serve.
func serveLogsAndExec(f *flags, rt *skiffcontainerd.Runtime) func(*nodeagent.Host) error {
	return func(host *nodeagent.Host) error {
		if rt == nil || f.port == 0 {
			return nil
		}
		srv, err := server.New(server.Config{
			Addr: fmt.Sprintf(":%d", f.port), NodeName: f.nodeName, CertFile: f.tlsCert, KeyFile: f.tlsKey,
			ClientCAFile: f.clientCAFile, Client: host.Client(), Runtime: rt,
		})
		if err != nil {
			return fmt.Errorf("--port: %w", err)
		}
		return host.Add(srv)
	}
}

// runProxy loads the eBPF datapath at the cgroup2 root and keeps it equal
// to the cluster's Services, for a host of real containers. The datapath
// is pinned and outlives the agent: connections through it survive a
// restart, and the next agent reconciles it.
func runProxy(f *flags, rt *skiffcontainerd.Runtime, opts nodeagent.Options) func(*nodeagent.Host) error {
	return func(host *nodeagent.Host) error {
		if rt == nil || f.proxyMode == "none" {
			return nil
		}
		if f.proxyMode != "ebpf" {
			return fmt.Errorf("--proxy-mode: unknown mode %q: use ebpf or none", f.proxyMode)
		}
		cidr, err := netip.ParsePrefix(f.serviceCIDR)
		if err != nil {
			return fmt.Errorf("--service-cidr: %w", err)
		}
		dp, err := openDatapath(f)
		if err != nil {
			return fmt.Errorf("--proxy-mode=ebpf: %w", err)
		}
		if err := dp.SetServiceCIDRs(cidr); err != nil {
			return err
		}
		// Its counters are served on /metrics, read on each scrape.
		if err := metrics.Registry.Register(lb.NewCollector(dp)); err != nil {
			return fmt.Errorf("exporting the datapath's counters: %w", err)
		}
		static, err := dnsServices(f, opts.Nodes[0].InternalIP)
		if err != nil {
			return err
		}
		p := &proxy.Proxier{Client: host.Client(), Datapath: dp, Static: static, NodePortTable: f.nodePortTable}
		return p.Setup(host.Manager())
	}
}

// runPodNetwork keeps this node's part of the pod network, for a host of
// real containers: routes to the other nodes' pods (host-gw) and the
// masquerade of pod traffic leaving the cluster.
func runPodNetwork(f *flags, rt *skiffcontainerd.Runtime) func(*nodeagent.Host) error {
	return func(host *nodeagent.Host) error {
		if rt == nil {
			return nil
		}
		cidr, err := netip.ParsePrefix(f.clusterCIDR)
		if err != nil {
			return fmt.Errorf("--cluster-cidr: %w", err)
		}
		network := &podnet.Network{NodeName: f.nodeName, ClusterCIDR: cidr, Table: f.podnetTable, Bridge: f.cniBridge}
		return network.Setup(host.Manager())
	}
}

// openDatapath loads the eBPF datapath and attaches it to --proxy-cgroup,
// which it creates when it is a node's own cgroup root.
func openDatapath(f *flags) (*lb.LoadBalancer, error) {
	if f.proxyCgroup == "/" || f.proxyCgroup == "" {
		return lb.Open(f.bpfPinDir)
	}
	root, err := lb.CgroupRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, f.proxyCgroup)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--proxy-cgroup: %w", err)
	}
	return lb.OpenCgroup(f.bpfPinDir, dir)
}

// dnsServices sends the kube-dns address, UDP and TCP port 53, to this
// node's own DNS server: every node answers its pods' queries itself, with
// no hop to another node (upstream needs NodeLocal DNSCache for that).
func dnsServices(f *flags, nodeIP string) ([]lb.Service, error) {
	if f.clusterDNS == "" {
		return nil, nil
	}
	vip, err := netip.ParseAddr(f.clusterDNS)
	if err != nil {
		return nil, fmt.Errorf("--cluster-dns: %w", err)
	}
	node, err := netip.ParseAddr(nodeIP)
	if err != nil {
		return nil, fmt.Errorf("the node's address %q: %w", nodeIP, err)
	}
	backend := []netip.AddrPort{netip.AddrPortFrom(node, uint16(f.dnsPort))}
	return []lb.Service{
		{VIP: vip, Port: 53, Proto: lb.UDP, Backends: backend},
		{VIP: vip, Port: 53, Proto: lb.TCP, Backends: backend},
	}, nil
}

// serveDNS runs the cluster DNS server on the node's address, for a host of
// real containers whose pods use --cluster-dns.
func serveDNS(f *flags, rt *skiffcontainerd.Runtime, opts nodeagent.Options) func(*nodeagent.Host) error {
	return func(host *nodeagent.Host) error {
		if rt == nil || f.clusterDNS == "" {
			return nil
		}
		hostConf, _ := os.ReadFile("/etc/resolv.conf")
		srv, err := dns.New(dns.Config{
			Addr:     net.JoinHostPort(opts.Nodes[0].InternalIP, strconv.Itoa(f.dnsPort)),
			Domain:   f.clusterDomain,
			Upstream: dns.ParseResolvConf(hostConf).Upstreams(),
			Source:   dns.ReaderSource{Reader: host.Client()},
		})
		if err != nil {
			return fmt.Errorf("--dns-port: %w", err)
		}
		if err := host.Add(srv); err != nil {
			return err
		}
		// Rebuild the zone when Services, slices or pods change.
		return host.Add(manager.RunnableFunc(func(ctx context.Context) error {
			return dns.NotifyOnChange(ctx, host.Manager().GetCache(), srv.Changed)
		}))
	}
}

// hostOptions turns the flags into the host's options: the nodes, their
// runtime and the timings. It also returns the containerd runtime when
// the node runs real containers.
func hostOptions(f *flags) (nodeagent.Options, *skiffcontainerd.Runtime, error) {
	if f.runtime != "simulated" && f.runtime != "containerd" {
		return nodeagent.Options{}, nil, fmt.Errorf("--runtime: unknown runtime %q: use containerd or simulated", f.runtime)
	}
	if f.runtime == "containerd" && f.simulate > 0 {
		return nodeagent.Options{}, nil, errors.New("--simulate needs --runtime=simulated")
	}
	if f.leaseDurationSeconds < 1 {
		return nodeagent.Options{}, nil, fmt.Errorf("--node-lease-duration-seconds: must be >= 1, got %d", f.leaseDurationSeconds)
	}
	nodes, err := nodeConfigs(f)
	if err != nil {
		return nodeagent.Options{}, nil, err
	}
	newRuntime := simulated.Runtimes(simulated.Options{StartDelay: f.simStartDelay, RunDuration: f.simRunDuration, RestartBackoff: f.simRestartDelay})
	var rt *skiffcontainerd.Runtime
	if f.runtime == "containerd" {
		if rt, err = containerdRuntime(f, nodes[0]); err != nil {
			return nodeagent.Options{}, nil, err
		}
		nodes[0].Port = int32(f.port)
		newRuntime = func(string) nodeagent.Runtime { return rt }
	}
	return nodeagent.Options{
		Nodes:                  nodes,
		NewRuntime:             newRuntime,
		LeaseDuration:          time.Duration(f.leaseDurationSeconds) * time.Second,
		LeaseRenewInterval:     f.leaseRenewInterval,
		StatusUpdateFrequency:  f.statusUpdateFreq,
		StatusReportFrequency:  f.statusReportFreq,
		MetricsBindAddress:     f.metricsAddr,
		HealthProbeBindAddress: f.probeAddr,
	}, rt, nil
}

// nodeConfigs describes the nodes to host: this machine's, or --simulate
// simulated ones with the capacity the flags give.
func nodeConfigs(f *flags) ([]nodeagent.NodeConfig, error) {
	osImage, kernel := nodeagent.HostOSImage(), nodeagent.HostKernelVersion()
	if f.simulate <= 0 {
		if f.nodeName == "" {
			return nil, errors.New("--node-name: the hostname is empty; name the node")
		}
		capacity, err := nodeagent.HostCapacity(f.maxPods)
		if err != nil {
			return nil, err
		}
		reserved, err := parseResourceList(f.systemReserved)
		if err != nil {
			return nil, fmt.Errorf("--system-reserved: %w", err)
		}
		ip := f.nodeIP
		if ip == "" {
			ip = nodeagent.HostIP()
		}
		return []nodeagent.NodeConfig{{
			Name: f.nodeName, InternalIP: ip, OSImage: osImage, KernelVersion: kernel,
			MachineID: nodeagent.HostMachineID(), SystemUUID: nodeagent.HostSystemUUID(), BootID: nodeagent.HostBootID(),
			Capacity: capacity, Allocatable: nodeagent.Allocatable(capacity, reserved),
		}}, nil
	}
	cpu, err := resource.ParseQuantity(f.simCPU)
	if err != nil {
		return nil, fmt.Errorf("--simulate-cpu: %w", err)
	}
	mem, err := resource.ParseQuantity(f.simMemory)
	if err != nil {
		return nil, fmt.Errorf("--simulate-memory: %w", err)
	}
	fleet := simulated.Fleet{
		Prefix: f.namePrefix,
		Count:  f.simulate,
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    cpu,
			corev1.ResourceMemory: mem,
			corev1.ResourcePods:   *resource.NewQuantity(int64(f.simMaxPods), resource.DecimalSI),
		},
		NodeCIDR:      f.simNodeCIDR,
		OSImage:       osImage,
		KernelVersion: kernel,
	}
	nodes, err := fleet.Nodes()
	if err != nil {
		return nil, fmt.Errorf("--simulate: %w", err)
	}
	return nodes, nil
}

// parseResourceList reads "cpu=500m,memory=1Gi".
func parseResourceList(s string) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not name=quantity", kv)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}

// containerdRuntime connects to containerd for this machine's node.
func containerdRuntime(f *flags, node nodeagent.NodeConfig) (*skiffcontainerd.Runtime, error) {
	network, err := skiffcontainerd.NewCNINetwork(cni.Config{StateDir: filepath.Join(f.rootDir, "cni"), Bridge: f.cniBridge})
	if err != nil {
		return nil, fmt.Errorf("--runtime=containerd: pod network: %w", err)
	}
	clusterDNS := f.clusterDNS
	if f.proxyMode == "none" {
		// Nothing would lead the kube-dns address to the agent's server.
		clusterDNS = ""
	}
	rt, err := skiffcontainerd.New(skiffcontainerd.Config{
		Network:       network,
		ClusterDNS:    clusterDNS,
		ClusterDomain: f.clusterDomain,
		Address:       f.containerd,
		Namespace:     f.ctrNamespace,
		CgroupRoot:    f.cgroupRoot,
		NodeCgroup:    f.statsCgroup,
		Dir:           f.rootDir,
		Images:        skiffcontainerd.PullImages(clock.RealClock{}),
		Allocatable:   node.Allocatable,
	}, node.InternalIP)
	if err != nil {
		return nil, fmt.Errorf("--runtime=containerd: %w", err)
	}
	return rt, nil
}
