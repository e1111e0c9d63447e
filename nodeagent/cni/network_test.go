package cni

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/hosttest"
)

// testNetwork is a Network on a bridge and range of its own, with everything
// it leaves on the host removed when the test ends.
type testNetwork struct {
	*Network
	bridge string
	cidr   *net.IPNet
}

// newTestNetwork sets up a network for one test. cidrBits is the size of its
// pod range (24 for a /24 inside 10.244.<n>.0/24, n picked at random among
// the ones no interface of the host uses).
func newTestNetwork(t *testing.T, cidrBits int) *testNetwork {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireFile(t, "/usr/lib/cni/bridge")
	hosttest.RequireCommand(t, "iptables-save")
	bridge := "skt" + randomHex(t, 4)
	cidr := freePodCIDR(t, cidrBits)
	n, err := New(Config{StateDir: t.TempDir(), Bridge: bridge})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tn := &testNetwork{Network: n, bridge: bridge, cidr: cidr}
	t.Cleanup(func() { tn.cleanup(t) })
	if err := n.SetPodCIDR(cidr.String()); err != nil {
		t.Fatalf("SetPodCIDR(%s): %v", cidr, err)
	}
	return tn
}

// cleanup tears down every pod the test left and deletes the bridge, which
// CNI never removes. portmap's top-level chains (CNI-HOSTPORT-*) are shared
// by every CNI user of the host and stay, as they do under the kubelet.
func (tn *testNetwork) cleanup(t *testing.T) {
	uids, err := tn.List()
	if err != nil {
		t.Errorf("cleanup: List: %v", err)
	}
	for _, uid := range uids {
		if err := tn.Teardown(context.Background(), uid); err != nil {
			t.Errorf("cleanup: Teardown(%s): %v", uid, err)
			// Unmount anyway, or the test's temporary directory
			// could not be removed.
			removeNetNS(tn.NetNSPath(uid))
		}
	}
	if out, err := exec.Command("ip", "link", "del", tn.bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		t.Errorf("cleanup: delete bridge %s: %v: %s", tn.bridge, err, out)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// freePodCIDR reserves, for the test, a range in 10.244.x.0/24 that no
// address of the host is in and no other test holds (hosttest.FreeSubnet),
// narrowed to bits.
func freePodCIDR(t *testing.T, bits int) *net.IPNet {
	t.Helper()
	subnet := hosttest.FreeSubnet(t, "10.244")
	_, cidr, _ := net.ParseCIDR(fmt.Sprintf("%s/%d", subnet.Addr(), bits))
	return cidr
}

func testPod(t *testing.T, name string) PodRef {
	return PodRef{UID: "uid-" + name + "-" + randomHex(t, 4), Namespace: "default", Name: name}
}

func (tn *testNetwork) setup(t *testing.T, pod PodRef, ports ...PortMapping) Result {
	t.Helper()
	res, err := tn.Setup(context.Background(), pod, ports)
	if err != nil {
		t.Fatalf("Setup(%s): %v", pod.Name, err)
	}
	return res
}

// leasePath is host-local's record of ip's lease.
func (tn *testNetwork) leasePath(ip net.IP) string {
	return filepath.Join(tn.ipamDir(), NetworkName, ip.String())
}

// bridgePorts are the interfaces attached to the bridge: one veth per pod.
func (tn *testNetwork) bridgePorts(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", tn.bridge, "brif"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// gateway is the bridge's address, the pods' default gateway.
func (tn *testNetwork) gateway() net.IP {
	gw := slices.Clone(tn.cidr.IP.To4())
	gw[3]++
	return gw
}

// podInterface is what a pod sees of one of its interfaces.
type podInterface struct {
	up    bool
	addrs []string
}

func interfacesIn(t *testing.T, netns string) map[string]podInterface {
	t.Helper()
	out := map[string]podInterface{}
	err := inNetNS(t, netns, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			addrs, err := i.Addrs()
			if err != nil {
				return err
			}
			pi := podInterface{up: i.Flags&net.FlagUp != 0}
			for _, a := range addrs {
				pi.addrs = append(pi.addrs, a.(*net.IPNet).IP.String())
			}
			out[i.Name] = pi
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list the interfaces in %s: %v", netns, err)
	}
	return out
}

// listenIn starts a TCP server inside netns on addr that answers each
// connection with greeting; it stops with the test.
func listenIn(t *testing.T, netns, addr, greeting string) {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(t, netns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, netns, err)
	}
	hosttest.Serve(t, ln, func(net.Conn) string { return greeting })
}

// dialFrom connects from netns ("" for the host's) to addr and returns the
// line the server sends.
func dialFrom(t *testing.T, netns, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}
	var err error
	if netns == "" {
		err = dial()
	} else {
		err = inNetNS(t, netns, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func natRulesMentioning(t *testing.T, s string) []string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A ") && strings.Contains(l, s) {
			rules = append(rules, l)
		}
	}
	return rules
}

// portmapChainsLeft are the per-pod chains of portmap 1.1.1 for uid still in
// the nat table; their names hash the network's name and the pod's UID.
func portmapChainsLeft(t *testing.T, uid string) []string {
	t.Helper()
	sum := sha512.Sum512([]byte(NetworkName + uid))
	hash := hex.EncodeToString(sum[:])[:21]
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var left []string
	for _, prefix := range []string{"CNI-DN-", "CNI-SN-"} {
		if strings.Contains(string(out), ":"+prefix+hash+" ") {
			left = append(left, prefix+hash)
		}
	}
	return left
}

func TestSetupGivesEachPodItsOwnAddressAndInterfaces(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	a, b := testPod(t, "a"), testPod(t, "b")
	ra, rb := tn.setup(t, a), tn.setup(t, b)

	if ra.IP.Equal(rb.IP) {
		t.Fatalf("pods a and b got the same address %s", ra.IP)
	}
	for _, p := range []struct {
		pod PodRef
		res Result
	}{{a, ra}, {b, rb}} {
		if !tn.cidr.Contains(p.res.IP) || p.res.IP.Equal(tn.gateway()) {
			t.Errorf("pod %s got %s, want a pod address in %s", p.pod.Name, p.res.IP, tn.cidr)
		}
		if p.res.NetNSPath != tn.NetNSPath(p.pod.UID) || !isNetNS(p.res.NetNSPath) {
			t.Errorf("pod %s: NetNSPath %q is not the mounted namespace %s", p.pod.Name, p.res.NetNSPath, tn.NetNSPath(p.pod.UID))
		}
		ifs := interfacesIn(t, p.res.NetNSPath)
		if eth0 := ifs["eth0"]; !eth0.up || !slices.Contains(eth0.addrs, p.res.IP.String()) {
			t.Errorf("pod %s: eth0 = %+v, want up with %s", p.pod.Name, eth0, p.res.IP)
		}
		if lo := ifs["lo"]; !lo.up || !slices.Contains(lo.addrs, "127.0.0.1") {
			t.Errorf("pod %s: lo = %+v, want up with 127.0.0.1", p.pod.Name, lo)
		}
		if len(ifs) != 2 {
			t.Errorf("pod %s has interfaces %v, want only lo and eth0", p.pod.Name, ifs)
		}
	}
	if ports := tn.bridgePorts(t); len(ports) != 2 {
		t.Errorf("bridge %s has ports %v, want one veth per pod", tn.bridge, ports)
	}

	// Setup again, as the agent does on every pass: the same result and no
	// second ADD (which would add a veth or a lease).
	again := tn.setup(t, a)
	if !again.IP.Equal(ra.IP) || again.NetNSPath != ra.NetNSPath {
		t.Errorf("second Setup of a = %+v, want %+v", again, ra)
	}
	if ports := tn.bridgePorts(t); len(ports) != 2 {
		t.Errorf("after a second Setup, bridge %s has ports %v, want 2", tn.bridge, ports)
	}
	leases, _ := os.ReadDir(filepath.Join(tn.ipamDir(), NetworkName))
	if n := len(slices.DeleteFunc(leases, func(e os.DirEntry) bool { return net.ParseIP(e.Name()) == nil })); n != 2 {
		t.Errorf("host-local holds %d leases, want 2", n)
	}
}

func TestPodsReachEachOtherAndTheHost(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	ra, rb := tn.setup(t, testPod(t, "server")), tn.setup(t, testPod(t, "client"))
	server := net.JoinHostPort(ra.IP.String(), "8080")
	listenIn(t, ra.NetNSPath, server, "hello from the server pod")

	for _, from := range []struct{ name, netns string }{{"the client pod", rb.NetNSPath}, {"the host", ""}} {
		got, err := dialFrom(t, from.netns, server)
		if err != nil || got != "hello from the server pod" {
			t.Errorf("from %s to %s: got %q, %v; want the server's greeting", from.name, server, got, err)
		}
	}
	// The bridge is the pods' way out: its address answers from a pod.
	hostSide := net.JoinHostPort(tn.gateway().String(), "0")
	ln, err := net.Listen("tcp", hostSide)
	if err != nil {
		t.Fatalf("listen on the bridge's address: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.WriteString(c, "hello from the host\n")
			c.Close()
		}
	}()
	if got, err := dialFrom(t, rb.NetNSPath, ln.Addr().String()); err != nil || got != "hello from the host" {
		t.Errorf("from the client pod to the host at %s: got %q, %v", ln.Addr(), got, err)
	}
}

func TestHostPortReachesThePod(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	hostPort := int32(30000 + randomPort(t))
	pod := testPod(t, "web")
	res := tn.setup(t, pod, PortMapping{HostPort: hostPort, ContainerPort: 8080, Protocol: "TCP"})
	listenIn(t, res.NetNSPath, ":8080", "hello through the hostPort")
	other := tn.setup(t, testPod(t, "other"))

	for _, from := range []struct{ name, netns, addr string }{
		{"the host's localhost", "", fmt.Sprintf("127.0.0.1:%d", hostPort)},
		{"another pod, through the node's bridge address", other.NetNSPath, fmt.Sprintf("%s:%d", tn.gateway(), hostPort)},
		{"the pod itself (hairpin)", res.NetNSPath, fmt.Sprintf("%s:%d", tn.gateway(), hostPort)},
	} {
		got, err := dialFrom(t, from.netns, from.addr)
		if err != nil || got != "hello through the hostPort" {
			t.Errorf("from %s to %s: got %q, %v; want the pod's greeting", from.name, from.addr, got, err)
		}
	}

	if chains := portmapChainsLeft(t, pod.UID); len(chains) == 0 {
		t.Fatalf("no portmap chain for the pod after Setup: the check after Teardown would prove nothing")
	}
	if err := tn.Teardown(context.Background(), pod.UID); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if chains := portmapChainsLeft(t, pod.UID); len(chains) > 0 {
		t.Errorf("portmap chains %v left after Teardown", chains)
	}
	if rules := natRulesMentioning(t, fmt.Sprintf("--dport %d ", hostPort)); len(rules) > 0 {
		t.Errorf("portmap rules for hostPort %d left after Teardown:\n%s", hostPort, strings.Join(rules, "\n"))
	}
	if _, err := dialFrom(t, "", fmt.Sprintf("127.0.0.1:%d", hostPort)); err == nil {
		t.Errorf("hostPort %d still answers after Teardown", hostPort)
	}
}

func randomPort(t *testing.T) int {
	b := make([]byte, 2)
	rand.Read(b)
	return (int(b[0])<<8 | int(b[1])) % 2000
}

func TestTeardownLeavesNothing(t *testing.T) {
	t.Parallel()
	// A /30 holds a single pod (.1 is the gateway): the second must wait
	// for the first's address to be released.
	tn := newTestNetwork(t, 30)
	first := testPod(t, "first")
	res := tn.setup(t, first, PortMapping{HostPort: int32(30000 + randomPort(t)), ContainerPort: 80})
	veths := tn.bridgePorts(t)
	if len(veths) != 1 {
		t.Fatalf("bridge ports after one Setup = %v, want one veth", veths)
	}
	if _, err := os.Stat(tn.leasePath(res.IP)); err != nil {
		t.Fatalf("no host-local lease for %s: %v", res.IP, err)
	}
	if rules := natRulesMentioning(t, res.IP.String()); len(rules) == 0 {
		t.Fatalf("no NAT rule for %s after Setup: the test below would prove nothing", res.IP)
	}

	second := testPod(t, "second")
	if _, err := tn.Setup(context.Background(), second, nil); err == nil {
		t.Fatalf("Setup of a second pod in a full /30 succeeded")
	}
	if _, err := os.Stat(tn.NetNSPath(second.UID)); !os.IsNotExist(err) {
		t.Errorf("the failed Setup left its namespace file (stat error %v)", err)
	}

	for i := range 2 {
		if err := tn.Teardown(context.Background(), first.UID); err != nil {
			t.Fatalf("Teardown #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(tn.leasePath(res.IP)); !os.IsNotExist(err) {
		t.Errorf("the lease of %s is still there after Teardown (stat error %v)", res.IP, err)
	}
	if _, err := os.Stat(res.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("the namespace file is still there after Teardown (stat error %v)", err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", veths[0])); !os.IsNotExist(err) {
		t.Errorf("veth %s is still there after Teardown (stat error %v)", veths[0], err)
	}
	if rules := natRulesMentioning(t, res.IP.String()); len(rules) > 0 {
		t.Errorf("NAT rules for %s left after Teardown:\n%s", res.IP, strings.Join(rules, "\n"))
	}
	if uids, err := tn.List(); err != nil || len(uids) != 0 {
		t.Errorf("List after Teardown = %v, %v; want nothing", uids, err)
	}

	third := tn.setup(t, testPod(t, "third"))
	if !third.IP.Equal(res.IP) {
		t.Errorf("a third pod got %s, want the released %s", third.IP, res.IP)
	}
}

func TestFailedSetupIsUndone(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	pod := testPod(t, "bad-port")
	// portmap rejects the port after the bridge plugin has made the veth
	// and leased an address.
	_, err := tn.Setup(context.Background(), pod, []PortMapping{{HostPort: 70000, ContainerPort: 80}})
	if err == nil {
		t.Fatalf("Setup with hostPort 70000 succeeded")
	}
	if !strings.Contains(err.Error(), "portmap") {
		t.Fatalf("Setup failed before portmap ran, so nothing was left to undo: %v", err)
	}
	leases, _ := os.ReadDir(filepath.Join(tn.ipamDir(), NetworkName))
	for _, l := range leases {
		if net.ParseIP(l.Name()) != nil {
			t.Errorf("lease %s left by the failed Setup", l.Name())
		}
	}
	if _, err := os.Stat(tn.NetNSPath(pod.UID)); !os.IsNotExist(err) {
		t.Errorf("namespace file left by the failed Setup (stat error %v)", err)
	}
	if rules := natRulesMentioning(t, pod.UID); len(rules) > 0 {
		t.Errorf("NAT rules left by the failed Setup:\n%s", strings.Join(rules, "\n"))
	}
	if chains := portmapChainsLeft(t, pod.UID); len(chains) > 0 {
		t.Errorf("portmap chains %v left by the failed Setup", chains)
	}
	waitFor(t, "the veth of the failed Setup to go", func() bool { return len(tn.bridgePorts(t)) == 0 })
	if uids, err := tn.List(); err != nil || len(uids) != 0 {
		t.Errorf("List after the failed Setup = %v, %v; want nothing", uids, err)
	}
}

func TestTeardownOfAnAddCutShort(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	pod := testPod(t, "cut-short")
	res := tn.setup(t, pod)
	// Make it look like an agent that died inside the bridge plugin's ADD:
	// veth, address and lease made, but no libcni cache.
	caches, err := filepath.Glob(filepath.Join(tn.cacheDir(), "results", "*"+pod.UID+"*"))
	if err != nil || len(caches) != 2 {
		t.Fatalf("libcni cache files of the pod = %v, %v; want loopback's and the conflist's", caches, err)
	}
	for _, c := range caches {
		os.Remove(c)
	}

	if err := tn.Teardown(context.Background(), pod.UID); err != nil {
		t.Fatalf("Teardown of an ADD cut short: %v", err)
	}
	if _, err := os.Stat(tn.leasePath(res.IP)); !os.IsNotExist(err) {
		t.Errorf("the lease of %s is still there (stat error %v)", res.IP, err)
	}
	if _, err := os.Stat(res.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("the namespace file is still there (stat error %v)", err)
	}
	waitFor(t, "the pod's veth to go", func() bool { return len(tn.bridgePorts(t)) == 0 })
}

// waitFor polls cond for up to 5 s: the kernel destroys an unmounted
// namespace, and the veth in it, asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
	}
}

func TestAgentRestartFindsAndTearsDownPods(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	kept, gone := testPod(t, "kept"), testPod(t, "gone")
	tn.setup(t, kept)
	rg := tn.setup(t, gone)
	// A Setup that stopped right after making the namespace.
	half := testPod(t, "half")
	if err := createNetNS(tn.NetNSPath(half.UID)); err != nil {
		t.Fatal(err)
	}

	restarted, err := New(tn.cfg)
	if err != nil {
		t.Fatalf("New over the same state: %v", err)
	}
	if got := restarted.PodCIDR(); got != tn.cidr.String() {
		t.Errorf("PodCIDR after a restart = %q, want %q", got, tn.cidr)
	}
	if err := restarted.Status(); err != nil {
		t.Errorf("Status after a restart: %v", err)
	}
	uids, err := restarted.List()
	want := []string{kept.UID, gone.UID, half.UID}
	slices.Sort(want)
	if err != nil || !slices.Equal(uids, want) {
		t.Fatalf("List after a restart = %v, %v; want %v", uids, err, want)
	}

	if err := restarted.Teardown(context.Background(), gone.UID); err != nil {
		t.Errorf("Teardown of a deleted pod after a restart: %v", err)
	}
	if _, err := os.Stat(tn.leasePath(rg.IP)); !os.IsNotExist(err) {
		t.Errorf("the lease of the deleted pod %s is still there (stat error %v)", rg.IP, err)
	}
	// The pod whose Setup was cut short is set up on the next try.
	rh, err := restarted.Setup(context.Background(), half, nil)
	if err != nil || !tn.cidr.Contains(rh.IP) {
		t.Errorf("Setup of a pod whose Setup was cut short = %+v, %v; want an address in %s", rh, err, tn.cidr)
	}
	want = []string{kept.UID, half.UID}
	slices.Sort(want)
	if uids, err := restarted.List(); err != nil || !slices.Equal(uids, want) {
		t.Errorf("List after tearing down the deleted pod = %v, %v; want %v", uids, err, want)
	}
	// Teardown of a pod never seen is a no-op.
	if err := restarted.Teardown(context.Background(), "uid-never-seen"); err != nil {
		t.Errorf("Teardown of an unknown pod: %v", err)
	}
}

func TestPodCIDRChange(t *testing.T) {
	t.Parallel()
	tn := newTestNetwork(t, 24)
	old := tn.setup(t, testPod(t, "old"))
	oldUID := filepath.Base(old.NetNSPath)

	next := freePodCIDR(t, 24)
	if err := tn.SetPodCIDR(next.String()); err != nil {
		t.Fatalf("SetPodCIDR(%s): %v", next, err)
	}
	fresh := tn.setup(t, testPod(t, "new"))
	if !next.Contains(fresh.IP) {
		t.Errorf("a pod set up after the change got %s, want an address in %s", fresh.IP, next)
	}
	if err := tn.Teardown(context.Background(), oldUID); err != nil {
		t.Fatalf("Teardown of a pod of the old range: %v", err)
	}
	if _, err := os.Stat(tn.leasePath(old.IP)); !os.IsNotExist(err) {
		t.Errorf("the old range's lease of %s is still there (stat error %v)", old.IP, err)
	}
}

func TestNotReadyUntilPodCIDR(t *testing.T) {
	hosttest.RequireFile(t, "/usr/lib/cni/bridge")
	n, err := New(Config{StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Status(); err == nil || !strings.Contains(err.Error(), "no podCIDR yet") {
		t.Errorf("Status without a podCIDR = %v, want one that says there is no podCIDR yet", err)
	}
	_, err = n.Setup(context.Background(), PodRef{UID: "u", Namespace: "default", Name: "p"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no podCIDR yet") {
		t.Errorf("Setup without a podCIDR = %v, want one that says there is no podCIDR yet", err)
	}
	if err := n.SetPodCIDR("10.244.7.0/24"); err != nil {
		t.Fatal(err)
	}
	if err := n.Status(); err != nil {
		t.Errorf("Status with a podCIDR: %v", err)
	}
	if err := n.SetPodCIDR("not-a-cidr"); err == nil {
		t.Errorf("SetPodCIDR(not-a-cidr) succeeded")
	}
	if got := n.PodCIDR(); got != "10.244.7.0/24" {
		t.Errorf("PodCIDR after a rejected change = %q, want the previous one", got)
	}
}

func TestNewSaysHowToInstallMissingPlugins(t *testing.T) {
	_, err := New(Config{StateDir: t.TempDir(), PluginDirs: []string{t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "apt-get install containernetworking-plugins") || !strings.Contains(err.Error(), "bridge, host-local, loopback, portmap") {
		t.Errorf("New without plugins = %v, want one naming the missing plugins and how to install them", err)
	}
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "StateDir") {
		t.Errorf("New without StateDir = %v, want one asking for it", err)
	}
}
