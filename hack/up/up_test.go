package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquireLock(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		holder  string // contents of the lock before we try
		wantErr error
	}{
		{"no lock", "", nil},
		{"stale lock of a dead process", strconv.Itoa(dead.Process.Pid), nil},
		{"garbage in the lock", "not a pid", nil},
		{"lock of a live process", strconv.Itoa(os.Getppid()), errRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "up.pid")
			if tc.holder != "" {
				if err := os.WriteFile(path, []byte(tc.holder), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := acquireLock(path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("acquireLock = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "kill "+tc.holder) {
				t.Errorf("the refusal does not say how to stop the holder: %v", err)
			}
			if err == nil {
				if pid, _ := readPid(path); pid != os.Getpid() {
					t.Errorf("the lock holds %d, want our pid %d", pid, os.Getpid())
				}
				releaseLock(path)
				if exists(path) {
					t.Error("releaseLock left the lock behind")
				}
			}
		})
	}
}

func TestPKIIssuesWhatTheClusterNeeds(t *testing.T) {
	p := pki{dir: t.TempDir()}
	serviceIP := firstServiceIP("10.96.0.0/16")
	if err := p.ensure(clusterCerts(serviceIP)); err != nil {
		t.Fatal(err)
	}
	server := readCert(t, p.cert("apiserver"))
	for _, name := range []string{"localhost", "kubernetes.default.svc.cluster.local"} {
		if err := server.VerifyHostname(name); err != nil {
			t.Errorf("the serving certificate does not cover %s: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "10.96.0.1"} {
		if err := server.VerifyHostname(ip); err != nil {
			t.Errorf("the serving certificate does not cover %s: %v", ip, err)
		}
	}
	admin := readCert(t, p.cert("admin"))
	if len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Errorf("the admin is not in system:masters: %v", admin.Subject)
	}
	if manager := readCert(t, p.cert("manager")); manager.Subject.CommonName != "system:skiff:manager" || len(manager.Subject.Organization) != 0 {
		t.Errorf("the manager's identity is %v, want user system:skiff:manager with no groups", manager.Subject)
	}
	if err := p.ensure([]certSpec{nodeAgentCert("box")}); err != nil {
		t.Fatal(err)
	}
	if agent := readCert(t, p.cert("nodeagent")); agent.Subject.CommonName != "system:node:box" ||
		len(agent.Subject.Organization) != 1 || agent.Subject.Organization[0] != "system:nodes" {
		t.Errorf("the node agent's identity is %v, want user system:node:box in group system:nodes", agent.Subject)
	}
	ca := readCert(t, p.cert("ca"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the admin certificate does not chain to the CA: %v", err)
	}
	// A node agent's serving certificate is verified, for its address, with
	// the CA that kubeconfigs hold.
	node := testUp(t, 3).nodes()[1]
	if err := p.ensure([]certSpec{nodeServingCert(node.servingCert(), node.name, node.addresses())}); err != nil {
		t.Fatal(err)
	}
	serving := readCert(t, p.cert(node.servingCert()))
	if _, err := serving.Verify(x509.VerifyOptions{Roots: pool, DNSName: "10.250.0.3", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the serving certificate of %s is not the CA's for 10.250.0.3: %v", node.name, err)
	}
	if !exists(filepath.Join(p.dir, "service-account.pub")) || !exists(p.key("service-account")) {
		t.Error("no service-account signing key pair")
	}

	// A second run keeps what exists, so handed-out kubeconfigs stay valid.
	ensureKeeps(t, p, clusterCerts(serviceIP), p.cert("admin"))
}

// ensureKeeps runs p.ensure(certs) and fails the test if it rewrote any of
// the files keep.
func ensureKeeps(t *testing.T, p pki, certs []certSpec, keep ...string) {
	t.Helper()
	before := map[string][]byte{}
	for _, f := range keep {
		before[f], _ = os.ReadFile(f)
	}
	if err := p.ensure(certs); err != nil {
		t.Fatal(err)
	}
	for _, f := range keep {
		if after, _ := os.ReadFile(f); !bytes.Equal(after, before[f]) {
			t.Errorf("ensure replaced %s", filepath.Base(f))
		}
	}
}

func TestKubeconfigEmbedsEverything(t *testing.T) {
	got := kubeconfig("https://127.0.0.1:6443", []byte("CA"), []byte("CERT"), []byte("KEY"))
	for _, want := range []string{
		"server: https://127.0.0.1:6443",
		"certificate-authority-data: Q0E=",
		"client-certificate-data: Q0VSVA==",
		"client-key-data: S0VZ",
		"current-context: skiff",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, got)
		}
	}
}

func TestFirstServiceIP(t *testing.T) {
	cases := map[string]string{"10.96.0.0/16": "10.96.0.1", "172.20.0.0/24": "172.20.0.1", "garbage": "10.96.0.1"}
	for cidr, want := range cases {
		if got := firstServiceIP(cidr); !got.Equal(net.ParseIP(want)) {
			t.Errorf("firstServiceIP(%q) = %v, want %s", cidr, got, want)
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestPKIReissuesTheServingCertificateForANewAddress(t *testing.T) {
	p := pki{dir: t.TempDir()}
	serviceIP := firstServiceIP("10.96.0.0/16")
	if err := p.ensure(clusterCerts(serviceIP)); err != nil {
		t.Fatal(err)
	}
	if err := readCert(t, p.cert("apiserver")).VerifyHostname("10.250.0.1"); err == nil {
		t.Fatal("the one-node serving certificate already names the node bridge's address")
	}

	// A run with several nodes serves on the node bridge too. The CA stays,
	// or every kubeconfig handed out would stop working, and so do the
	// certificates that lack nothing.
	ensureKeeps(t, p, clusterCerts(serviceIP, net.ParseIP("10.250.0.1")), p.cert("ca"), p.cert("admin"))
	server := readCert(t, p.cert("apiserver"))
	for _, ip := range []string{"127.0.0.1", "10.96.0.1", "10.250.0.1"} {
		if err := server.VerifyHostname(ip); err != nil {
			t.Errorf("the reissued serving certificate does not cover %s: %v", ip, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, p.cert("ca")))
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the reissued serving certificate does not chain to the CA: %v", err)
	}

	// Back to one node: a certificate naming more than needed is kept.
	ensureKeeps(t, p, clusterCerts(serviceIP), p.cert("apiserver"))
}

func TestCovers(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"localhost", "kubernetes"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)}}
	cases := []struct {
		name string
		spec certSpec
		want bool
	}{
		{"same names", certSpec{dnsNames: []string{"localhost", "kubernetes"}, ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)}}, true},
		{"fewer names", certSpec{dnsNames: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}}, true},
		{"a client certificate asks for none", certSpec{}, true},
		{"a missing address", certSpec{ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 250, 0, 1)}}, false},
		{"a missing DNS name", certSpec{dnsNames: []string{"kubernetes.default"}}, false},
	}
	for _, tc := range cases {
		if got := covers(cert, tc.spec); got != tc.want {
			t.Errorf("%s: covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testUp is a run's settings as the flags' defaults make them.
func testUp(t *testing.T, nodes int) *up {
	t.Helper()
	u := &up{
		stateDir: "/state", port: 6443, agentPort: 18082, servePort: 10250, dnsPort: 10053,
		serviceCIDR: "10.96.0.0/16", clusterCIDR: "10.244.0.0/16", cniBridge: "skiff0",
		nodeAgent: "bin/nodeagent", nodeName: "box", runtime: "containerd", containerd: "/run/containerd/containerd.sock",
		nodeCount: nodes, nodeNetwork: "10.250.0.0/24", nodeBridge: "skiffnet0",
	}
	if err := u.configure(); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNodesOfARun(t *testing.T) {
	one := testUp(t, 1).nodes()
	three := testUp(t, 3).nodes()
	if len(one) != 1 || len(three) != 3 {
		t.Fatalf("got %d and %d nodes, want 1 and 3", len(one), len(three))
	}
	cases := []struct {
		name                    string
		got, want               node
		root, pins, log, cgroup string
	}{
		{
			// As before there were several: this machine, in its network.
			name: "the one node", got: one[0],
			want: node{name: "box", ctrNamespace: "skiff", dir: "/state", health: "127.0.0.1:18082"},
			root: "/state/nodeagent", pins: "/state/bpf", log: "nodeagent", cgroup: "",
		},
		{
			// Health is polled from the host, on the node's address.
			name: "node 2 of 3", got: three[1],
			want: node{name: "box-2", index: 2, ip: netip.MustParseAddr("10.250.0.3"), netns: "/run/netns/skiffnet0-2",
				ctrNamespace: "skiff-box-2", dir: "/state/nodes/box-2", health: "10.250.0.3:18082"},
			root: "/state/nodes/box-2/nodeagent", pins: "/state/nodes/box-2/bpf", log: "nodeagent-box-2", cgroup: "/skiff/box-2",
		},
		{
			name: "node 3 of 3", got: three[2],
			want: node{name: "box-3", index: 3, ip: netip.MustParseAddr("10.250.0.4"), netns: "/run/netns/skiffnet0-3",
				ctrNamespace: "skiff-box-3", dir: "/state/nodes/box-3", health: "10.250.0.4:18082"},
			root: "/state/nodes/box-3/nodeagent", pins: "/state/nodes/box-3/bpf", log: "nodeagent-box-3", cgroup: "/skiff/box-3",
		},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %+v, want %+v", tc.name, tc.got, tc.want)
		}
		if got := [4]string{tc.got.rootDir(), tc.got.bpfPinDir(), tc.got.childName(), tc.got.cgroup()}; got != [4]string{tc.root, tc.pins, tc.log, tc.cgroup} {
			t.Errorf("%s: root, pins, log and cgroup = %q, want %q", tc.name, got, [4]string{tc.root, tc.pins, tc.log, tc.cgroup})
		}
	}
}

func TestAgentArgs(t *testing.T) {
	simulated := testUp(t, 3)
	simulated.runtime = "simulated"
	cases := []struct {
		name     string
		u        *up
		node     int
		want     []string
		unwanted []string
	}{
		{
			name: "one node in the host's network", u: testUp(t, 1), node: 0,
			want: []string{"--kubeconfig=/state/nodeagent.kubeconfig", "--node-name=box", "--health-probe-bind-address=127.0.0.1:18082",
				"--metrics-bind-address=127.0.0.1:18083",
				"--runtime=containerd", "--containerd-namespace=skiff", "--root-dir=/state/nodeagent", "--bpf-pin-dir=/state/bpf",
				"--cluster-cidr=10.244.0.0/16", "--nodeport-table=skiff_nodeport_skiff0", "--podnet-table=skiff_podnet_skiff0",
				"--tls-cert-file=/state/pki/nodeagent-serving.crt", "--tls-private-key-file=/state/pki/nodeagent-serving.key", "--client-ca-file=/state/pki/ca.crt"},
			// Its Services cover the whole machine, as before.
			unwanted: []string{"--node-ip", "--cgroup-root", "--proxy-cgroup", "--node-stats-cgroup"},
		},
		{
			name: "node 2 of 3", u: testUp(t, 3), node: 1,
			want: []string{"--kubeconfig=/state/nodeagent.kubeconfig", "--node-name=box-2", "--node-ip=10.250.0.3",
				"--health-probe-bind-address=10.250.0.3:18082", "--metrics-bind-address=10.250.0.3:18083",
				"--runtime=containerd", "--containerd-address=/run/containerd/containerd.sock", "--containerd-namespace=skiff-box-2",
				"--root-dir=/state/nodes/box-2/nodeagent", "--bpf-pin-dir=/state/nodes/box-2/bpf", "--cni-bridge=skiff0",
				"--port=10250", "--service-cidr=10.96.0.0/16", "--cluster-dns=10.96.0.10", "--dns-port=10053", "--cluster-cidr=10.244.0.0/16",
				"--cgroup-root=/skiff/box-2", "--proxy-cgroup=/skiff/box-2", "--node-stats-cgroup=/skiff/box-2",
				// kubectl skiff logs and exec verify the agent with the CA,
				// and the agent knows the admin by its certificate.
				"--tls-cert-file=/state/pki/nodeagent-serving-box-2.crt", "--tls-private-key-file=/state/pki/nodeagent-serving-box-2.key",
				"--client-ca-file=/state/pki/ca.crt"},
		},
		{
			name: "simulated node 1 of 3", u: simulated, node: 0,
			want:     []string{"--node-name=box-1", "--node-ip=10.250.0.2", "--runtime=simulated"},
			unwanted: []string{"--containerd-address", "--root-dir", "--cgroup-root", "--tls-cert-file", "--client-ca-file"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.u.agentArgs(tc.u.nodes()[tc.node])
			for _, want := range tc.want {
				if !slices.Contains(args, want) {
					t.Errorf("no %s in %v", want, args)
				}
			}
			for _, unwanted := range tc.unwanted {
				if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, unwanted+"=") }) {
					t.Errorf("%s in %v", unwanted, args)
				}
			}
		})
	}
}

func TestAPIServerAddress(t *testing.T) {
	if got := testUp(t, 1).server(); got != "https://127.0.0.1:6443" {
		t.Errorf("one node: server = %s, want loopback", got)
	}
	// The nodes' netns cannot reach the host's loopback.
	three := testUp(t, 3)
	if got := three.server(); got != "https://10.250.0.1:6443" {
		t.Errorf("three nodes: server = %s, want the node bridge's address", got)
	}
	if ips := three.apiserverIPs(); len(ips) != 1 || !ips[0].Equal(net.ParseIP("10.250.0.1")) {
		t.Errorf("three nodes: the serving certificate must also name %v, want 10.250.0.1", ips)
	}
}

func TestConfigureRefuses(t *testing.T) {
	cases := []struct {
		name    string
		change  func(*up)
		wantErr string
	}{
		{"no nodes", func(u *up) { u.nodeCount = 0 }, "--nodes=0"},
		{"more nodes than addresses", func(u *up) { u.nodeCount = 7; u.nodeNetwork = "10.250.0.0/29" }, "holds 5 nodes"},
		{"a bridge name Linux refuses", func(u *up) { u.nodeBridge = "a-very-long-bridge-name" }, "node bridge"},
		{"an IPv6 node network", func(u *up) { u.nodeNetwork = "fd00::/64" }, "IPv4"},
		{"kept pods on several nodes", func(u *up) { u.keepPods = true }, "--keep-pods works with one node only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &up{stateDir: "/state", nodeCount: 3, nodeNetwork: "10.250.0.0/24", nodeBridge: "skiffnet0"}
			tc.change(u)
			if err := u.configure(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("configure = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
	// One node keeps its pods, as before.
	if err := (&up{stateDir: "/state", nodeCount: 1, keepPods: true}).configure(); err != nil {
		t.Errorf("one node with --keep-pods: %v", err)
	}
}

func TestDepartedNodes(t *testing.T) {
	cases := []struct {
		name     string
		existing []string
		count    int
		want     []string
	}{
		{"same nodes", []string{"box-1", "box-2", "box-3"}, 3, nil},
		{"fewer nodes", []string{"box-1", "box-2", "box-3", "box-4"}, 2, []string{"box-3", "box-4"}},
		{"from one node to several", []string{"box"}, 2, []string{"box"}},
		{"from several to one", []string{"box", "box-1", "box-2"}, 1, []string{"box-1", "box-2"}},
		{"more nodes than before", []string{"box-1"}, 3, nil},
		{"other nodes are not ours", []string{"sim-0001", "boxer", "box-x", "box-01", "box-0", "other-1"}, 1, nil},
	}
	for _, tc := range cases {
		if got := departedNodes(tc.existing, "box", tc.count); !slices.Equal(got, tc.want) {
			t.Errorf("%s: departedNodes = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRestartBackoff: a node agent that keeps exiting soon waits longer
// each time, up to the cap; one that ran for a while is restarted at once.
func TestRestartBackoff(t *testing.T) {
	tests := []struct {
		name      string
		prev, ran time.Duration
		want      time.Duration
	}{
		{"first exit", 0, time.Second, restartDelay},
		{"exits again soon", restartDelay, 2 * time.Second, 2 * restartDelay},
		{"keeps exiting", 16 * time.Second, time.Second, maxRestart},
		{"at the cap", maxRestart, time.Second, maxRestart},
		{"ran long enough", 16 * time.Second, restartReset, restartDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := restartBackoff(tt.prev, tt.ran); got != tt.want {
				t.Errorf("restartBackoff(%s, %s) = %s, want %s", tt.prev, tt.ran, got, tt.want)
			}
		})
	}
}

// TestIsShimOf: only the shims of the node's namespace at this cluster's
// containerd are a node's.
func TestIsShimOf(t *testing.T) {
	const addr, ns = "/tmp/s/containerd.sock", "skiff-vm-1"
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"the node's shim", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", ns, "-id", "x", "-address", addr}, true},
		{"another node's", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "skiff-vm-2", "-id", "x", "-address", addr}, false},
		{"another containerd's", []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", ns, "-id", "x", "-address", "/run/containerd/containerd.sock"}, false},
		{"not a shim", []string{"/bin/sleep", "-namespace", ns, "-address", addr}, false},
		{"a flag without its value", []string{"containerd-shim-runc-v2", "-address", addr, "-namespace"}, false},
		{"no command line (a kernel thread)", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isShimOf(tt.args, addr, ns); got != tt.want {
				t.Errorf("isShimOf(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}
