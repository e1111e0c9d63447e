package network

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// web is a test's echo Deployment behind its Service, with a client pod.
type web struct {
	ns       string
	svc      *skiffcorev1.Service
	backends []skiffcorev1.Pod
	client   *skiffcorev1.Pod
}

// startWeb runs a Deployment of replicas echo servers, one per node,
// behind a Service, and a client pod on the first node.
func (c *cluster) startWeb(t *testing.T, replicas int32, configure func(*skiffcorev1.Service)) *web {
	t.Helper()
	w := &web{ns: c.namespace(t)}
	svc := echoService(w.ns, "web")
	if configure != nil {
		configure(svc)
	}
	w.svc = c.createService(t, svc)
	w.client = clientPod(w.ns, "client", c.Nodes[0].Name, "")
	c.create(t, echoDeployment(w.ns, "web", replicas), w.client)
	w.backends = c.waitForApp(t, w.ns, "web", int(replicas))
	c.waitReady(t, w.client)
	return w
}

// vip is the Service's cluster IP and port of a protocol.
func (w *web) vip(protocol corev1.Protocol) string {
	for _, p := range w.svc.Spec.Ports {
		if p.Protocol == protocol {
			return net.JoinHostPort(w.svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))
		}
	}
	panic("the Service has no port of protocol " + protocol)
}

// A Service's backends spread over the three nodes are all reached from a
// pod on one node (so at least two backends are on other nodes), by the
// Service's cluster IP and by its DNS names: the full name and the short
// one through the pod's search path.
func TestServiceReachesEveryBackendByIPAndName(t *testing.T) {
	c := requireCluster(t)
	w := c.startWeb(t, 3, nil)
	if nodes := backendNodes(w.backends); len(nodes) != 3 {
		t.Fatalf("the backends run on nodes %v, want one on each of the 3 nodes", nodes)
	}
	for _, target := range []string{
		w.vip(corev1.ProtocolTCP),
		"web." + w.ns + ".svc.cluster.local",
		"web",
	} {
		t.Run(target, func(t *testing.T) {
			c.eventuallyServedBy(t, w.client, "http", target, 30, podNames(w.backends))
		})
	}
}

// UDP through a Service: each datagram to the cluster IP is answered by a
// backend, and every backend answers some.
func TestServiceUDP(t *testing.T) {
	c := requireCluster(t)
	w := c.startWeb(t, 3, nil)
	c.eventuallyServedBy(t, w.client, "udp", w.vip(corev1.ProtocolUDP), 30, podNames(w.backends))
}

// A pod that is not ready gets no traffic through the Service while a
// ready one does, and it gets its share once it becomes ready.
func TestServiceSkipsPodsThatAreNotReady(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t)
	svc := c.createService(t, echoService(ns, "web"))
	ready := echoPod(ns, "ready", c.Nodes[1].Name, "web")
	notReady := echoPod(ns, "not-ready", c.Nodes[2].Name, "web")
	notReady.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
		PeriodSeconds: 1,
	}
	from := clientPod(ns, "client", c.Nodes[0].Name, "")
	c.create(t, ready, notReady, from)
	c.waitReady(t, ready, from)
	testenv.Eventually(t, podTimeout, func() error {
		if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(notReady), notReady); err != nil {
			return err
		}
		if notReady.Status.Phase != corev1.PodRunning || notReady.Status.PodIP == "" {
			return fmt.Errorf("pod %s is %s, want Running (and not ready)", notReady.Name, notReady.Status.Phase)
		}
		return nil
	})
	target := net.JoinHostPort(svc.Spec.ClusterIP, "80")

	c.eventuallyServedBy(t, from, "http", target, 20, []string{"ready"})
	if podutil.IsReady(notReady) {
		t.Fatalf("pod %s became ready though its probe fails", notReady.Name)
	}
	// The not-ready pod itself serves: only the Service leaves it out.
	if out, err := c.execIn(t, from, "timeout", "3", "wget", "-qO-", "http://"+net.JoinHostPort(notReady.Status.PodIP, "8080")+"/"); err != nil || strings.TrimSpace(out) != notReady.Name {
		t.Errorf("the not-ready pod does not answer on its own address: %q %v", out, err)
	}

	if _, err := c.execIn(t, notReady, "touch", "/tmp/ready"); err != nil {
		t.Fatal(err)
	}
	c.eventuallyServedBy(t, from, "http", target, 20, []string{"not-ready", "ready"})
}

// A deleted Service's cluster IP refuses connections at once, as upstream's
// kube-proxy does (REJECT), rather than letting them time out.
func TestDeletedServiceRefusesConnections(t *testing.T) {
	c := requireCluster(t)
	w := c.startWeb(t, 1, nil)
	target := w.vip(corev1.ProtocolTCP)
	c.eventuallyServedBy(t, w.client, "http", target, 3, podNames(w.backends))

	if err := c.Client.Delete(context.Background(), w.svc); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(target)
	testenv.Eventually(t, trafficLimit, func() error {
		var out string
		var err error
		took := timed(func() {
			out, err = c.execIn(t, w.client, "sh", "-c", "timeout 10 nc -w 5 "+host+" "+port+" </dev/null 2>&1; echo exit=$?")
		})
		switch {
		case err != nil:
			return err
		case !strings.Contains(strings.ToLower(out), "refused"):
			return fmt.Errorf("connecting to the deleted Service's %s: %q after %s, want connection refused", target, strings.TrimSpace(out), took.Round(time.Millisecond))
		case took > 5*time.Second:
			t.Fatalf("connecting to the deleted Service's %s was refused only after %s, want at once", target, took)
		}
		t.Logf("connecting to the deleted Service's %s: %q in %s (exec included)", target, strings.TrimSpace(out), took.Round(time.Millisecond))
		return nil
	})
}

// With ClientIP affinity each client stays with one backend; another
// client (another pod, another IP) is placed on its own.
func TestServiceSessionAffinityClientIP(t *testing.T) {
	c := requireCluster(t)
	w := c.startWeb(t, 3, func(svc *skiffcorev1.Service) {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	})
	other := clientPod(w.ns, "other-client", c.Nodes[1].Name, "")
	c.create(t, other)
	c.waitReady(t, other)
	target := w.vip(corev1.ProtocolTCP)

	chosen := map[string]string{}
	for _, from := range []*skiffcorev1.Pod{w.client, other} {
		// The first answers may come before the Service is programmed.
		testenv.Eventually(t, trafficLimit, func() error {
			got := tally(c.requests(t, from, "http", target, 20))
			if len(got) != 1 || got[failed] > 0 {
				return fmt.Errorf("client %s (%s) was answered by %v, want one backend every time", from.Name, from.Status.PodIP, got)
			}
			for name := range got {
				chosen[from.Name] = name
			}
			return nil
		})
	}
	t.Logf("backends chosen by client IP: %v", chosen)
}

// backendNodes is the set of nodes the pods run on.
func backendNodes(pods []skiffcorev1.Pod) map[string]bool {
	nodes := map[string]bool{}
	for _, p := range pods {
		nodes[p.Spec.NodeName] = true
	}
	return nodes
}
