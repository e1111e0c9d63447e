package network

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
)

// This file sorts after the others, so this test, which kills a node
// agent, runs last: if up does not bring the agent back, the whole cluster
// stops, and only this test fails for it.

// A node agent that dies and comes back keeps the established connections
// of its node's pods: a client pod holds one HTTP keep-alive connection to
// a Service's backend on another node (busybox nc fed by `tail -f`), the
// agent of the client's node is killed with SIGKILL, and once it is back
// the same connection (the same nc process) still carries requests, and
// new connections through the cluster IP work.
func TestNodeAgentRestartKeepsConnections(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t)
	svc := c.createService(t, echoService(ns, "web"))
	backend := echoPod(ns, "backend", c.Nodes[1].Name, "web")
	vip := svc.Spec.ClusterIP
	// Connect once the Service answers, so that nc holds a connection to
	// the backend; if nc ever exits, the pod says so and stays.
	script := `until timeout 2 wget -qO- http://` + vip + `/ >/dev/null 2>&1; do sleep 0.2; done
touch /tmp/in
tail -f /tmp/in | nc ` + vip + ` 80 >/tmp/out
echo "nc exited: $?" >/tmp/nc-exited
exec sleep 3600`
	from := clientPod(ns, "client", c.Nodes[0].Name, script)
	c.create(t, backend, from)
	c.waitReady(t, backend, from)

	ncPid := c.waitForConnection(t, from)
	c.requestOnConnection(t, from, 1)

	old, err := c.Agent(from.Spec.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killing the node agent of %s (pid %d)", from.Spec.NodeName, old.Pid)
	if err := syscall.Kill(old.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	took := timed(func() { c.waitForAgentBack(t, c.Nodes[0], old.Pid) })
	t.Logf("the node agent of %s was back and ready %s after SIGKILL", from.Spec.NodeName, took.Round(time.Millisecond))

	c.requestOnConnection(t, from, 2)
	// Once the new agent has had time to resync its pods and Services.
	time.Sleep(5 * time.Second)
	c.requestOnConnection(t, from, 3)
	if pid := c.waitForConnection(t, from); pid != ncPid {
		t.Errorf("nc is now pid %s, was %s: the connection was made again", pid, ncPid)
	}
	c.eventuallyServedBy(t, from, "http", net.JoinHostPort(vip, "80"), 5, []string{backend.Name})
}

// waitForConnection waits until the client's nc runs (connected) and
// returns its pid; the test fails if nc has exited.
func (c *cluster) waitForConnection(t *testing.T, from *skiffcorev1.Pod) string {
	t.Helper()
	var pid string
	testenv.Eventually(t, trafficLimit, func() error {
		if out, err := c.execIn(t, from, "cat", "/tmp/nc-exited"); err == nil {
			t.Fatalf("the client's connection ended: %s", strings.TrimSpace(out))
		}
		out, err := c.execIn(t, from, "pidof", "nc")
		pid = strings.TrimSpace(out)
		return err
	})
	return pid
}

// requestOnConnection sends the n-th request on the client's connection and
// waits for its answer.
func (c *cluster) requestOnConnection(t *testing.T, from *skiffcorev1.Pod, n int) {
	t.Helper()
	if _, err := c.execIn(t, from, "sh", "-c", `printf 'GET / HTTP/1.1\r\nHost: e2e\r\n\r\n' >>/tmp/in`); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if out, err := c.execIn(t, from, "cat", "/tmp/nc-exited"); err == nil {
			t.Fatalf("the client's connection ended before answer %d: %s", n, strings.TrimSpace(out))
		}
		out, err := c.execIn(t, from, "cat", "/tmp/out")
		if err != nil {
			return err
		}
		if got := strings.Count(out, "HTTP/1.1 200 OK"); got < n {
			return fmt.Errorf("%d answers on the connection, want %d: %q", got, n, out)
		}
		return nil
	})
}

// waitForAgentBack waits until a node agent other than the killed one runs
// for the node and answers its readiness check. up must bring it back; if
// up stops instead, the cluster is gone and the test says so.
func (c *cluster) waitForAgentBack(t *testing.T, n uptest.Node, killed int) {
	t.Helper()
	readyz := "http://" + net.JoinHostPort(n.IP, strconv.Itoa(clusterConfig.AgentPort)) + "/readyz"
	httpClient := &http.Client{Timeout: 2 * time.Second}
	testenv.Eventually(t, 2*time.Minute, func() error {
		if c.Run.Exited() {
			t.Fatalf("up stopped the cluster when the node agent of %s died, instead of starting it again; up's output:\n%s", n.Name, c.Run.Output())
		}
		a, err := c.Agent(n.Name)
		if err != nil {
			return err
		}
		if a.Pid == killed {
			return fmt.Errorf("the killed node agent %d of %s is still there", killed, n.Name)
		}
		resp, err := httpClient.Get(readyz)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", readyz, resp.Status)
		}
		return nil
	})
	testenv.Eventually(t, time.Minute, func() error {
		var node skiffcorev1.Node
		if err := c.Client.Get(t.Context(), client.ObjectKey{Name: n.Name}, &node); err != nil {
			return err
		}
		if !uptest.NodeReady(&node) {
			return fmt.Errorf("node %s is not Ready", n.Name)
		}
		return nil
	})
}
