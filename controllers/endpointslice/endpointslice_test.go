package endpointslice

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers/garbagecollector"
	"skiff.dev/skiff/internal/testenv"
)

const timeout = 60 * time.Second

// testFinalizer keeps a deleted pod terminating, as its node agent would
// while the containers stop.
const testFinalizer = "skiff-test/hold"

// start runs the controller, and the garbage collector that deletes a
// Service's slices with it.
func start(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error {
		if err := Setup(m); err != nil {
			return err
		}
		return garbagecollector.Setup(m)
	})
}

func webService(ns string) *skiffcorev1.Service {
	svc := &skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	svc.Spec.Selector = map[string]string{"app": "web"}
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
		{Name: "metrics", Port: 9100},
	}
	return svc
}

// runPod creates a pod exposing its "http" port on httpPort, then writes
// the status its node agent would: an address, Running, and Ready.
func runPod(t *testing.T, ns, name string, httpPort int32, ip string, ready bool) *skiffcorev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}}}
	pod.Spec.NodeName = "node-1"
	pod.Spec.Containers = []corev1.Container{{Name: "echo", Image: "echo", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: httpPort}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	setReady(t, pod, ready)
	return pod
}

func setReady(t *testing.T, pod *skiffcorev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := env.Client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
}

func managedSlices(ns, svc string) ([]skiffcorev1.EndpointSlice, error) {
	var list skiffcorev1.EndpointSliceList
	err := env.Client.List(context.Background(), &list, client.InNamespace(ns),
		client.MatchingLabels{skiffcorev1.LabelServiceName: svc, LabelManagedBy: ManagedBy})
	return list.Items, err
}

// summary renders a Service's slices as sorted lines
// "http=8080,metrics=9100: a(ready,serving) b(terminating)", the
// conditions listed when true.
func summary(list []skiffcorev1.EndpointSlice) string {
	var lines []string
	for _, s := range list {
		var ports, eps []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", *p.Name, *p.Port))
		}
		sort.Strings(ports)
		for _, e := range s.Endpoints {
			eps = append(eps, fmt.Sprintf("%s(%s)", e.TargetRef.Name, conditions(e.Conditions)))
		}
		sort.Strings(eps)
		lines = append(lines, strings.Join(ports, ",")+": "+strings.Join(eps, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, " | ")
}

func conditions(c discoveryv1.EndpointConditions) string {
	var out []string
	for _, f := range []struct {
		name string
		v    *bool
	}{{"ready", c.Ready}, {"serving", c.Serving}, {"terminating", c.Terminating}} {
		if f.v != nil && *f.v {
			out = append(out, f.name)
		}
	}
	return strings.Join(out, ",")
}

// waitSummary waits until the Service's slices read want.
func waitSummary(t *testing.T, ns, svc, want string) []skiffcorev1.EndpointSlice {
	t.Helper()
	var list []skiffcorev1.EndpointSlice
	testenv.Eventually(t, timeout, func() error {
		var err error
		if list, err = managedSlices(ns, svc); err != nil {
			return err
		}
		if got := summary(list); got != want {
			return fmt.Errorf("slices of %s read\n  %s\nwant\n  %s", svc, got, want)
		}
		return nil
	})
	return list
}

// TestEndpointsFollowPods walks a Service's slices through its pods' life:
// a named targetPort that two pods expose on different numbers splits
// them into two slices; a pod turns ready; a deleted pod is terminating
// (serving, not ready) while its finalizer holds it, then leaves; a
// relabelled pod leaves; a quiet resync writes nothing; and the slices go
// with the Service.
func TestEndpointsFollowPods(t *testing.T) {
	ctx := context.Background()
	start(t)
	ns := env.Namespace(t, "follow-")
	svc := webService(ns)
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	// No pod yet: one empty placeholder.
	waitSummary(t, ns, "web", ": ")

	a := runPod(t, ns, "a", 8080, "10.244.1.1", true)
	runPod(t, ns, "b", 8081, "10.244.1.2", true)
	c := runPod(t, ns, "c", 8080, "10.244.1.3", false)
	// A pod with no address yet is no endpoint.
	noIP := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pending", Labels: map[string]string{"app": "web"}}}
	noIP.Spec.Containers = []corev1.Container{{Name: "echo", Image: "echo"}}
	if err := env.Client.Create(ctx, noIP); err != nil {
		t.Fatal(err)
	}

	list := waitSummary(t, ns, "web",
		"http=8080,metrics=9100: a(ready,serving) c() | http=8081,metrics=9100: b(ready,serving)")
	for _, s := range list {
		if !metav1.IsControlledBy(&s, svc) || !strings.HasPrefix(s.Name, "web-") || s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("slice %s: controller %v, addressType %s; want the Service as controller and a web- name", s.Name, metav1.GetControllerOf(&s), s.AddressType)
		}
		for _, e := range s.Endpoints {
			if e.NodeName == nil || *e.NodeName != "node-1" || e.TargetRef.Kind != "Pod" || len(e.Addresses) != 1 {
				t.Errorf("endpoint %+v lacks its node, target or address", e)
			}
		}
	}

	// c turns ready.
	setReady(t, c, true)
	waitSummary(t, ns, "web", "http=8080,metrics=9100: a(ready,serving) c(ready,serving) | http=8081,metrics=9100: b(ready,serving)")

	// a is deleted but held: terminating, still serving, not ready.
	patch := client.MergeFrom(a.DeepCopy())
	controllerutil.AddFinalizer(a, testFinalizer)
	if err := env.Client.Patch(ctx, a, patch); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	waitSummary(t, ns, "web", "http=8080,metrics=9100: a(serving,terminating) c(ready,serving) | http=8081,metrics=9100: b(ready,serving)")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(a), a); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(a.DeepCopy())
	controllerutil.RemoveFinalizer(a, testFinalizer)
	if err := env.Client.Patch(ctx, a, patch); err != nil {
		t.Fatal(err)
	}
	waitSummary(t, ns, "web", "http=8080,metrics=9100: c(ready,serving) | http=8081,metrics=9100: b(ready,serving)")

	// b is relabelled out of the Service: its slice goes.
	var b skiffcorev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "b"}, &b); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(b.DeepCopy())
	b.Labels["app"] = "elsewhere"
	if err := env.Client.Patch(ctx, &b, patch); err != nil {
		t.Fatal(err)
	}
	list = waitSummary(t, ns, "web", "http=8080,metrics=9100: c(ready,serving)")

	// A resync with nothing new writes nothing.
	before := list[0].ResourceVersion
	patch = client.MergeFrom(svc.DeepCopy())
	svc.Annotations = map[string]string{"resync": "1"}
	if err := env.Client.Patch(ctx, svc, patch); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	list = waitSummary(t, ns, "web", "http=8080,metrics=9100: c(ready,serving)")
	if list[0].ResourceVersion != before {
		t.Errorf("a resync rewrote the slice: resourceVersion %s, was %s", list[0].ResourceVersion, before)
	}

	// The slices go with the Service.
	if err := env.Client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		list, err := managedSlices(ns, "web")
		if err != nil {
			return err
		}
		if len(list) > 0 {
			return fmt.Errorf("%d slices outlive their Service", len(list))
		}
		return nil
	})
}

// TestPublishNotReadyAddresses: a Service that publishes not-ready pods
// lists them ready, for peers that must find each other before they are.
func TestPublishNotReadyAddresses(t *testing.T) {
	start(t)
	ns := env.Namespace(t, "publish-")
	svc := webService(ns)
	svc.Spec.PublishNotReadyAddresses = true
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	if err := env.Client.Create(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	runPod(t, ns, "a", 8080, "10.244.2.1", false)
	list := waitSummary(t, ns, "web", "http=8080,metrics=9100: a(ready,serving)")
	if _, ok := list[0].Labels[labelHeadless]; !ok {
		t.Errorf("a headless Service's slice lacks %s: %v", labelHeadless, list[0].Labels)
	}
}

// TestManySlices: 150 pods fill a slice of 100 and one of 50.
func TestManySlices(t *testing.T) {
	ctx := context.Background()
	start(t)
	ns := env.Namespace(t, "many-")
	svc := webService(ns)
	svc.Spec.Ports = svc.Spec.Ports[1:]
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		runPod(t, ns, fmt.Sprintf("p%03d", i), 8080, fmt.Sprintf("10.244.3.%d", i+1), true)
	}
	testenv.Eventually(t, timeout, func() error {
		list, err := managedSlices(ns, "web")
		if err != nil {
			return err
		}
		var sizes []int
		for _, s := range list {
			sizes = append(sizes, len(s.Endpoints))
		}
		slices.Sort(sizes)
		if !slices.Equal(sizes, []int{50, 100}) {
			return fmt.Errorf("slice sizes %v, want [50 100]", sizes)
		}
		return nil
	})
}

// TestSelectorlessServiceUntouched: the hand-written slice of a Service
// without a selector stays as written, and the controller adds none.
func TestSelectorlessServiceUntouched(t *testing.T) {
	ctx := context.Background()
	start(t)
	ns := env.Namespace(t, "manual-")
	outside := &skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "outside"}}
	outside.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}}
	manual := &skiffcorev1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "outside-1", Labels: map[string]string{skiffcorev1.LabelServiceName: "outside"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
	}
	for _, o := range []client.Object{outside, manual, webService(ns)} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Once the selector Service next to it has its slice, the controller
	// has had its look at both.
	waitSummary(t, ns, "web", ": ")
	time.Sleep(time.Second)
	var all skiffcorev1.EndpointSliceList
	if err := env.Client.List(ctx, &all, client.InNamespace(ns), client.MatchingLabels{skiffcorev1.LabelServiceName: "outside"}); err != nil {
		t.Fatal(err)
	}
	if len(all.Items) != 1 || all.Items[0].ResourceVersion != manual.ResourceVersion {
		t.Fatalf("the selectorless Service's slices changed: %d slices, %+v", len(all.Items), all.Items)
	}
}
