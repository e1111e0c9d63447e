package network

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/images"
)

// The echo server's ports (hack/images/echo).
const (
	echoHTTPPort = 8080
	echoUDPPort  = 8081
)

// Generous bounds: the machine has two cores for the control plane, three
// node agents and the pods.
const (
	podTimeout   = 90 * time.Second
	trafficLimit = 60 * time.Second
)

// namespace creates a namespace for one test and deletes what the test
// created in it at the end. skiff runs no namespace controller, so the
// objects are deleted one kind at a time; their pods stop in the
// background.
func (c *cluster) namespace(t *testing.T) string {
	t.Helper()
	ns := c.env.Namespace(t, "net-")
	t.Cleanup(func() {
		ctx := context.Background()
		for _, kind := range []client.Object{&skiffappsv1.Deployment{}, &skiffappsv1.ReplicaSet{}, &skiffcorev1.Service{}, &skiffcorev1.Pod{}} {
			if err := c.Client.DeleteAllOf(ctx, kind, client.InNamespace(ns), client.GracePeriodSeconds(0)); err != nil {
				t.Logf("cleaning up %T in %s: %v", kind, ns, err)
			}
		}
	})
	return ns
}

// labels of the pods of a test's app.
func appLabels(app string) map[string]string { return map[string]string{"app": app} }

// echoPod is an echo server pinned to a node.
func echoPod(ns, name, nodeName, app string) *skiffcorev1.Pod {
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: appLabels(app)},
		Spec:       echoPodSpec(nodeName),
	}
}

func echoPodSpec(nodeName string) corev1.PodSpec {
	return corev1.PodSpec{
		NodeName:                      nodeName,
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		Containers: []corev1.Container{{
			Name:  "echo",
			Image: images.Echo,
			Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: echoHTTPPort, Protocol: corev1.ProtocolTCP},
				{Name: "udp", ContainerPort: echoUDPPort, Protocol: corev1.ProtocolUDP},
			},
		}},
	}
}

// clientPod is a pod to act from, pinned to a node. It runs the echo
// image, which holds busybox (wget, nc, nslookup) and echo's UDP client,
// and runs script (by default, it only waits).
func clientPod(ns, name, nodeName, script string) *skiffcorev1.Pod {
	if script == "" {
		script = "exec sleep 3600"
	}
	spec := echoPodSpec(nodeName)
	spec.Containers[0].Name, spec.Containers[0].Ports = "client", nil
	spec.Containers[0].Command = []string{"sh", "-c", script}
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: appLabels("client")},
		Spec:       spec,
	}
}

// echoDeployment runs replicas echo servers, at most one per node.
func echoDeployment(ns, name string, replicas int32) *skiffappsv1.Deployment {
	spec := echoPodSpec("")
	spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: appLabels(name)},
			TopologyKey:   corev1.LabelHostname,
		}},
	}}
	return &skiffappsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: appLabels(name)},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: appLabels(name)}, Spec: spec},
		},
	}
}

// echoService serves the pods of app: HTTP on port 80 and UDP on 81.
func echoService(ns, app string) *skiffcorev1.Service {
	return &skiffcorev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: corev1.ServiceSpec{
			Selector: appLabels(app),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromInt32(echoHTTPPort), Protocol: corev1.ProtocolTCP},
				{Name: "udp", Port: 81, TargetPort: intstr.FromInt32(echoUDPPort), Protocol: corev1.ProtocolUDP},
			},
		},
	}
}

// create creates objects, failing the test on an error.
func (c *cluster) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// createService creates a Service and returns it once it has its cluster
// IP (and node ports, for a NodePort Service).
func (c *cluster) createService(t *testing.T, svc *skiffcorev1.Service) *skiffcorev1.Service {
	t.Helper()
	c.create(t, svc)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(svc), svc); err != nil {
			return err
		}
		if svc.Spec.ClusterIP == "" {
			return fmt.Errorf("service %s has no cluster IP yet", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if svc.Spec.Type == corev1.ServiceTypeNodePort && p.NodePort == 0 {
				return fmt.Errorf("service %s has no node port for %s yet", svc.Name, p.Name)
			}
		}
		return nil
	})
	return svc
}

// waitReady waits until the pods are Running and Ready, and returns them as
// they are then (with their IPs and containers).
func (c *cluster) waitReady(t *testing.T, pods ...*skiffcorev1.Pod) []*skiffcorev1.Pod {
	t.Helper()
	testenv.Eventually(t, podTimeout, func() error {
		for _, p := range pods {
			if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
				return err
			}
			if !podutil.IsReady(p) {
				return fmt.Errorf("pod %s on %q is not Ready: phase %s, conditions %v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
			}
		}
		return nil
	})
	return pods
}

// waitForApp waits until exactly n pods of app are Ready, and returns them
// sorted by name.
func (c *cluster) waitForApp(t *testing.T, ns, app string, n int) []skiffcorev1.Pod {
	t.Helper()
	var ready []skiffcorev1.Pod
	testenv.Eventually(t, podTimeout, func() error {
		var list skiffcorev1.PodList
		if err := c.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels(appLabels(app))); err != nil {
			return err
		}
		ready = ready[:0]
		var states []string
		for _, p := range list.Items {
			states = append(states, fmt.Sprintf("%s on %q: %s ready=%v deleting=%v", p.Name, p.Spec.NodeName, p.Status.Phase, podutil.IsReady(&p), p.DeletionTimestamp != nil))
			if p.DeletionTimestamp == nil && podutil.IsReady(&p) {
				ready = append(ready, p)
			}
		}
		if len(ready) != n || len(list.Items) != n {
			return fmt.Errorf("%d of %d pods of %s are Ready, want %d: %v", len(ready), len(list.Items), app, n, states)
		}
		return nil
	})
	slices.SortFunc(ready, func(a, b skiffcorev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return ready
}

func podNames(pods []skiffcorev1.Pod) []string {
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}
