package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/ebpf/lb/lbtest"
	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/proxy"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.RunSuite(m, "nodeagent/proxy", &env) }

// serve answers each connection with name.
func serve(t *testing.T, addr, name string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hosttest.Serve(t, ln, func(net.Conn) string { return name })
}

// ask connects to addr and returns what the backend answered.
func ask(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}

// seen asks n times and returns which backends answered.
func seen(addr string, n int) (map[string]bool, error) {
	out := map[string]bool{}
	for range n {
		name, err := ask(addr)
		if err != nil {
			return out, err
		}
		out[name] = true
	}
	return out, nil
}

// TestServiceThroughTheDatapath: a Service and its EndpointSlice, written
// to the real apiserver, become a VIP in the real eBPF datapath: every
// ready backend answers, a backend that turns unready gets no more
// connections, and a deleted Service's VIP refuses.
func TestServiceThroughTheDatapath(t *testing.T) {
	dp := lbtest.Attach(t, netip.MustParsePrefix("10.99.0.0/16"))
	ctx := context.Background()
	// Two backends on one port of two loopback addresses.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	serve(t, fmt.Sprintf("127.0.0.2:%d", port), "one")
	serve(t, fmt.Sprintf("127.0.0.3:%d", port), "two")

	p := &proxy.Proxier{Client: nil, Datapath: dp}
	env.StartManager(t, func(mgr ctrl.Manager) error {
		p.Client = mgr.GetClient()
		return p.Setup(mgr)
	})

	svc := &skiffcorev1.Service{}
	svc.Namespace, svc.Name = "default", "web"
	svc.Spec.ClusterIP = "10.99.0.10"
	svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	sl := &skiffcorev1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4}
	sl.Namespace, sl.Name = "default", "web-1"
	sl.Labels = map[string]string{discoveryv1.LabelServiceName: "web"}
	sl.Ports = []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}}
	sl.Endpoints = []discoveryv1.Endpoint{
		{Addresses: []string{"127.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		{Addresses: []string{"127.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
	}
	if err := env.Client.Create(ctx, sl); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		got, err := seen("10.99.0.10:80", 30)
		if err != nil || !got["one"] || !got["two"] {
			return fmt.Errorf("backends seen through the VIP: %v (%v)", got, err)
		}
		return nil
	})

	sl.Endpoints[1].Conditions.Ready = ptr.To(false)
	if err := env.Client.Update(ctx, sl); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		got, err := seen("10.99.0.10:80", 30)
		if err != nil || got["two"] || !got["one"] {
			return fmt.Errorf("backends seen after two turned unready: %v (%v)", got, err)
		}
		return nil
	})

	if err := env.Client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if _, err := ask("10.99.0.10:80"); err == nil || !strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("a deleted Service's VIP answered: %v", err)
		}
		return nil
	})
}
