package network

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// A NodePort Service answers on every node's address, from outside the
// cluster (this test process, on the host): on the node that runs its only
// backend and on the nodes that run none, which forward to it.
func TestNodePortFromTheHost(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t)
	svc := echoService(ns, "web")
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc = c.createService(t, svc)
	backend := echoPod(ns, "backend", c.Nodes[0].Name, "web")
	c.create(t, backend)
	c.waitReady(t, backend)
	nodePort := svc.Spec.Ports[0].NodePort

	httpClient := &http.Client{Timeout: 3 * time.Second}
	for i, n := range c.Nodes {
		name := n.Name + " without the backend"
		if i == 0 {
			name = n.Name + " with the backend"
		}
		t.Run(name, func(t *testing.T) {
			url := "http://" + net.JoinHostPort(n.IP, strconv.Itoa(int(nodePort))) + "/"
			testenv.Eventually(t, trafficLimit, func() error {
				return answeredBy(httpClient, url, backend)
			})
		})
	}
}

// answeredBy GETs url and checks that the echo server of pod answered.
func answeredBy(httpClient *http.Client, url string, pod *skiffcorev1.Pod) error {
	resp, err := httpClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(body)); resp.StatusCode != http.StatusOK || got != pod.Name {
		return fmt.Errorf("GET %s: %s %q, want 200 from pod %s", url, resp.Status, got, pod.Name)
	}
	return nil
}
