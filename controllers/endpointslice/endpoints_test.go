package endpointslice

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// testPod is a running pod with an address, its Ready condition as given,
// and one container exposing ports.
func testPod(name string, ready bool, ports ...corev1.ContainerPort) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": "web"}}}
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: "echo", Ports: ports}}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = "10.244.0.10"
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	return p
}

func TestTargetPort(t *testing.T) {
	pod := testPod("p", true,
		corev1.ContainerPort{Name: "http", ContainerPort: 8080},
		corev1.ContainerPort{Name: "dns", ContainerPort: 5353, Protocol: corev1.ProtocolUDP})
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "sidecar", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9090}}},
		{Name: "setup", Ports: []corev1.ContainerPort{{Name: "setup", ContainerPort: 7070}}},
	}
	for _, tc := range []struct {
		name   string
		port   corev1.ServicePort
		want   int32
		wantOK bool
	}{
		{"no targetPort means the port", corev1.ServicePort{Port: 80}, 80, true},
		{"a number is used as is", corev1.ServicePort{Port: 80, TargetPort: intstr.FromInt32(9000)}, 9000, true},
		{"a name resolves in the pod", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("http")}, 8080, true},
		{"a name must match the protocol", corev1.ServicePort{Port: 53, TargetPort: intstr.FromString("dns")}, 0, false},
		{"a UDP name resolves for UDP", corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns")}, 5353, true},
		{"a sidecar's port resolves", corev1.ServicePort{Port: 90, TargetPort: intstr.FromString("metrics")}, 9090, true},
		{"a plain init container's port does not", corev1.ServicePort{Port: 70, TargetPort: intstr.FromString("setup")}, 0, false},
		{"an unknown name leaves the port out", corev1.ServicePort{Port: 80, TargetPort: intstr.FromString("grpc")}, 0, false},
	} {
		got, ok := targetPort(tc.port, pod)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: got %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestEndpointConditions(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		name                         string
		ready, deleting, publish     bool
		wantReady, wantServing, term bool
	}{
		{name: "ready", ready: true, wantReady: true, wantServing: true},
		{name: "not ready", ready: false},
		{name: "ready and terminating still serves", ready: true, deleting: true, wantServing: true, term: true},
		{name: "not ready and terminating", deleting: true, term: true},
		{name: "publishNotReadyAddresses makes a not-ready pod ready", publish: true, wantReady: true, wantServing: true},
		{name: "publishNotReadyAddresses even when terminating", publish: true, deleting: true, wantReady: true, wantServing: true, term: true},
	} {
		pod := testPod("p", tc.ready)
		if tc.deleting {
			pod.DeletionTimestamp = &now
		}
		svc := &skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
		svc.Spec.PublishNotReadyAddresses = tc.publish
		c := endpointFor(svc, pod).endpoint.Conditions
		if *c.Ready != tc.wantReady || *c.Serving != tc.wantServing || *c.Terminating != tc.term {
			t.Errorf("%s: ready=%v serving=%v terminating=%v; want %v %v %v", tc.name, *c.Ready, *c.Serving, *c.Terminating, tc.wantReady, tc.wantServing, tc.term)
		}
	}
}

func TestInEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*skiffcorev1.Pod)
		wantIn bool
	}{
		{"running with an address", func(*skiffcorev1.Pod) {}, true},
		{"no address yet", func(p *skiffcorev1.Pod) { p.Status.PodIP = "" }, false},
		{"succeeded", func(p *skiffcorev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, false},
		{"failed", func(p *skiffcorev1.Pod) { p.Status.Phase = corev1.PodFailed }, false},
	} {
		p := testPod("p", true)
		tc.edit(p)
		if got := inEndpoints(p); got != tc.wantIn {
			t.Errorf("%s: in endpoints %v, want %v", tc.name, got, tc.wantIn)
		}
	}
}

func TestEndpointIdentity(t *testing.T) {
	pod := testPod("web-0", true)
	pod.Spec.NodeName = "n1"
	pod.Spec.Hostname, pod.Spec.Subdomain = "web-0", "web"
	svc := &skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	ep := endpointFor(svc, pod).endpoint
	if ep.Addresses[0] != "10.244.0.10" || *ep.NodeName != "n1" || ep.TargetRef.Name != "web-0" || ep.TargetRef.Kind != "Pod" || *ep.Hostname != "web-0" {
		t.Fatalf("endpoint %+v", ep)
	}
	svc.Name = "other"
	if ep := endpointFor(svc, pod).endpoint; ep.Hostname != nil {
		t.Fatalf("a pod named under another Service's subdomain got hostname %q", *ep.Hostname)
	}
}
