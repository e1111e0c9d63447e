package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
)

// TestUpStartsStopsAndKeepsState runs `make up`'s program for real: the
// cluster comes up with the manager holding its lease, the node agent's
// Node Ready and the sample pod running on it, a second run is refused,
// Ctrl-C stops every process, and a restart keeps the data.
func TestUpStartsStopsAndKeepsState(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(root, "bin", bin)); err != nil {
			t.Fatalf("bin/%s is missing: run `make envtest-assets` (make test does it)", bin)
		}
	}
	work := t.TempDir()
	upBin, managerBin, agentBin := binaries(t, root)

	ports := freePorts(t, 6)
	state := filepath.Join(work, "state")
	args := []string{
		"--state-dir=" + state, "--bin=" + filepath.Join(root, "bin"), "--manager=" + managerBin,
		"--nodeagent=" + agentBin, "--node-name=e2e-node",
		// Apart from a `make up` that may run on this machine.
		"--cni-bridge=skupe2e0", "--cluster-cidr=10.249.0.0/16", "--service-cidr=10.97.0.0/16",
		fmt.Sprintf("--port=%d", ports[0]), fmt.Sprintf("--etcd-port=%d", ports[1]), fmt.Sprintf("--manager-port=%d", ports[2]),
		fmt.Sprintf("--nodeagent-port=%d", ports[3]), fmt.Sprintf("--nodeagent-serve-port=%d", ports[4]), fmt.Sprintf("--nodeagent-dns-port=%d", ports[5]),
	}
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(root, "bin", "kubectl"), append([]string{"--kubeconfig=" + filepath.Join(state, "kubeconfig")}, args...)...).CombinedOutput()
		return string(out), err
	}

	first := startUp(t, root, upBin, args)
	if out, err := kubectl("create", "configmap", "survivor", "--from-literal=k=v"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The manager is healthy before it is elected, and the node agent once
	// registered, before its status is written: wait a little for both.
	waitFor(t, "the manager holds a leader lease", filepath.Join(state, "logs", "manager.log"), func() bool {
		out, err := kubectl("get", "lease", "-n", "skiff-system", "manager.skiff.dev", "-o", "jsonpath={.spec.holderIdentity}")
		return err == nil && out != ""
	})
	waitFor(t, "the node agent's Node is Ready", filepath.Join(state, "logs", "nodeagent.log"), func() bool {
		out, err := kubectl("get", "nodes.core.skiff.dev", "e2e-node", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "True"
	})
	// The sample pod is scheduled onto that node, and its agent runs it.
	waitFor(t, "the sample pod runs on the node", filepath.Join(state, "logs", "nodeagent.log"), func() bool {
		out, err := kubectl("get", "pods.core.skiff.dev", "hello", "-o", "jsonpath={.spec.nodeName} {.status.phase}")
		return err == nil && out == "e2e-node Running"
	})
	// The manager's and the agent's /metrics: reconciles, the sample's
	// scheduling and start, and with real containers the Services' eBPF
	// counters.
	agentSeries := []string{"controller_runtime_reconcile_total", "kubelet_pod_start_duration_seconds_count"}
	if out, _ := kubectl("get", "pods.core.skiff.dev", "hello", "-o", "jsonpath={.status.containerStatuses[0].containerID}"); strings.HasPrefix(out, "containerd://") {
		agentSeries = append(agentSeries, `skiff_lb_connections_total{result="translated"}`)
	}
	for url, series := range map[string][]string{
		fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]):   {"controller_runtime_reconcile_total", `scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}`},
		fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[3]+1): agentSeries,
	} {
		if missing, err := testenv.MissingSeries(url, series...); len(missing) > 0 {
			t.Errorf("%s lacks %v (%v)", url, missing, err)
		}
	}
	if out, err := kubectl("get", "lease", "-n", "kube-node-lease", "e2e-node", "-o", "jsonpath={.spec.holderIdentity}"); err != nil || out != "e2e-node" {
		t.Errorf("the node agent holds no node lease: %q %v", out, err)
	}
	if out, err := kubectl("get", "deployments.apps.skiff.dev", "web"); err != nil {
		t.Errorf("the samples were not applied: %v: %s", err, out)
	}

	second := exec.Command(upBin, args...)
	second.Dir = root
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "skiff is already running") {
		t.Errorf("a second run was not refused plainly: %v: %s", err, out)
	}

	first.stopAndCheck(t)
	restarted := startUp(t, root, upBin, args)
	if out, err := kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}"); err != nil || out != "v" {
		t.Errorf("the data did not survive a restart: %q %v", out, err)
	}
	// The stop stopped the pods' containers; the new agent starts them
	// again, as after a node's reboot.
	waitFor(t, "the sample pod runs again after the restart", filepath.Join(state, "logs", "nodeagent.log"), func() bool {
		out, err := kubectl("get", "pods.core.skiff.dev", "hello", "-o", `jsonpath={.status.phase} {.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "Running True"
	})
	// Deleting the samples through the agent leaves nothing on the node:
	// no container, network namespace or mount.
	if out, err := kubectl("delete", "-k", filepath.Join(root, "config", "samples"), "--wait=false"); err != nil {
		t.Errorf("deleting the samples: %v: %s", err, out)
	}
	waitFor(t, "every sample pod is gone", filepath.Join(state, "logs", "nodeagent.log"), func() bool {
		out, err := kubectl("get", "pods.core.skiff.dev", "-A", "-o", "name")
		return err == nil && strings.TrimSpace(out) == ""
	})
	restarted.stopAndCheck(t)
}

// TestUpSeveralNodesSurviveACrashAndShrink runs up with three nodes, each
// in its own network namespace: their Nodes become Ready at their addresses
// on the node network. up is then killed, as by a crash, and started with
// two nodes: the netns left behind are shut down and created anew, the
// third Node is forgotten, and Ctrl-C leaves nothing of the cluster on the
// machine.
func TestUpSeveralNodesSurviveACrashAndShrink(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "nsenter")
	hosttest.RequireCommand(t, "nft")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	upBin, managerBin, agentBin := binaries(t, root)

	// Names and ranges of our own, so that a `make up` or another run of
	// this test on the machine is left alone.
	suffix := fmt.Sprintf("%03d", os.Getpid()%1000)
	bridge, cniBridge := "skupn"+suffix, "skupc"+suffix
	network := fmt.Sprintf("10.247.%d.0/24", os.Getpid()%250)
	ports := freePorts(t, 4)
	state := filepath.Join(work, "state")
	args := func(nodes int) []string {
		return []string{
			fmt.Sprintf("--nodes=%d", nodes), "--node-name=e2e", "--samples=",
			"--state-dir=" + state, "--bin=" + filepath.Join(root, "bin"), "--manager=" + managerBin, "--nodeagent=" + agentBin,
			"--node-bridge=" + bridge, "--node-network=" + network, "--cni-bridge=" + cniBridge,
			"--cluster-cidr=10.243.0.0/16", "--service-cidr=10.95.0.0/16",
			fmt.Sprintf("--port=%d", ports[0]), fmt.Sprintf("--etcd-port=%d", ports[1]), fmt.Sprintf("--manager-port=%d", ports[2]),
			fmt.Sprintf("--nodeagent-port=%d", ports[3]),
		}
	}
	kubectl := func(args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(root, "bin", "kubectl"), append([]string{"--kubeconfig=" + filepath.Join(state, "kubeconfig")}, args...)...).CombinedOutput()
		return string(out), err
	}
	readyNodes := func(want string) func() bool {
		return func() bool {
			out, err := kubectl("get", "nodes.core.skiff.dev", "-o",
				`jsonpath={range .items[*]}{.metadata.name}={.status.addresses[?(@.type=="InternalIP")].address}={.status.conditions[?(@.type=="Ready")].status} {end}`)
			return err == nil && strings.TrimSpace(out) == want
		}
	}
	nodeIP := func(i int) string { return strings.TrimSuffix(network, "0/24") + fmt.Sprint(1+i) }

	first := startUp(t, root, upBin, args(3))
	waitFor(t, "three Nodes Ready at their node network addresses", filepath.Join(state, "logs", "nodeagent-e2e-1.log"),
		readyNodes(fmt.Sprintf("e2e-1=%s=True e2e-2=%s=True e2e-3=%s=True", nodeIP(1), nodeIP(2), nodeIP(3))))
	if !strings.Contains(first.Output(), "e2e-3") || !strings.Contains(first.Output(), nodeIP(3)) {
		t.Errorf("up did not print the nodes and their addresses:\n%s", first.Output())
	}
	// Each agent serves /metrics on its node's address, next to its health.
	for i := 1; i <= 3; i++ {
		url := fmt.Sprintf("http://%s:%d/metrics", nodeIP(i), ports[3]+1)
		if missing, err := testenv.MissingSeries(url, "controller_runtime_reconcile_total", "kubelet_pod_start_duration_seconds_count"); len(missing) > 0 {
			t.Errorf("%s lacks %v (%v)", url, missing, err)
		}
	}

	// A crash: up dies at once, its children with it, its netns stay.
	_ = syscall.Kill(first.Pid(), syscall.SIGKILL)
	waitFor(t, "up to die", filepath.Join(state, "logs", "nodeagent-e2e-1.log"), first.Exited)
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); !strings.Contains(string(out), bridge+"-3") {
		t.Fatalf("the crash left no netns behind, so this test tests nothing:\n%s", out)
	}

	second := startUp(t, root, upBin, args(2))
	if !strings.Contains(second.Output(), "node e2e-3 was not shut down cleanly") {
		t.Errorf("up did not shut down the netns the crash left:\n%s", second.Output())
	}
	waitFor(t, "two Nodes Ready and the third forgotten", filepath.Join(state, "logs", "nodeagent-e2e-1.log"),
		readyNodes(fmt.Sprintf("e2e-1=%s=True e2e-2=%s=True", nodeIP(1), nodeIP(2))))
	if out, _ := exec.Command("ip", "netns", "list").CombinedOutput(); strings.Contains(string(out), bridge+"-3") {
		t.Errorf("the third node's netns is still there:\n%s", out)
	}
	second.stopAndCheck(t)

	for _, check := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}, {"nft", "list", "tables"}, {"cat", "/proc/self/mounts"}} {
		out, err := exec.Command(check[0], check[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%v: %v", check, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, bridge) || strings.Contains(line, cniBridge) || strings.Contains(line, state) {
				t.Errorf("left after up stopped (%s): %s", strings.Join(check, " "), line)
			}
		}
	}
}

// waitFor polls check for up to a minute, and fails the test with the end
// of log if it never holds.
func waitFor(t *testing.T, what, log string, check func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !check(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("%s: not after a minute; the end of %s:\n%s", what, log, tail(log, 15))
			return
		}
	}
}

// upRun is a running `make up`.
type upRun struct{ *uptest.Run }

// startUp runs up and waits until it says the cluster is up.
func startUp(t *testing.T, root, upBin string, args []string) upRun {
	t.Helper()
	r, err := uptest.Start(root, upBin, args, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Output(), "export KUBECONFIG=") {
		t.Errorf("make up did not print how to point kubectl at the cluster:\n%s", r.Output())
	}
	return upRun{r}
}

// stopAndCheck sends Ctrl-C and checks that up exits cleanly and leaves no
// process behind.
func (r upRun) stopAndCheck(t *testing.T) {
	t.Helper()
	if children := uptest.Descendants(r.Pid()); len(children) < 4 {
		t.Errorf("expected etcd, kube-apiserver, the manager and the node agent below up, found pids %v", children)
	}
	if err := r.Stop(time.Minute); err != nil {
		t.Error(err)
	}
}

// built holds up, the manager and the node agent, built once for every
// test of the package.
var built struct {
	once sync.Once
	dir  string
	bin  uptest.Binaries
	err  error
}

// binaries builds up, the manager and the node agent of the checkout at
// root, once, and returns their paths.
func binaries(t *testing.T, root string) (up, manager, nodeAgent string) {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "skiff-up-test-"); built.err == nil {
			built.bin, built.err = uptest.Build(root, built.dir)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin.Up, built.bin.Manager, built.bin.NodeAgent
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// freePorts finds n free ports, each followed by a free one (see
// uptest.FreePorts).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := uptest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
