package replicaset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// timeout bounds every wait: the machine running the suite is shared and
// loaded.
const timeout = 60 * time.Second

// TestReplicaSet runs one manager with only the ReplicaSet controller (no
// scheduler, no node agent: the tests play the node agent by writing pod
// status themselves) and runs the scenarios in parallel, each in its own
// namespace.
func TestReplicaSet(t *testing.T) {
	env.StartManager(t, Setup)
	t.Run("group", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			test func(*testing.T)
		}{
			{"scale up, then down by the deletion ranking, with kubectl scale", testScaleUpAndDown},
			{"readyReplicas and availableReplicas after minReadySeconds", testAvailability},
			{"adoption of orphans, release of pods that stop matching", testAdoptAndRelease},
			{"a scale from 0 to 50 never makes more than 50 pods", testExpectations},
			{"a refused creation sets ReplicaFailure until the refusal ends", testReplicaFailure},
			{"a terminating pod is replaced at once and counted apart", testTerminatingPod},
			{"a ReplicaSet being deleted replaces nothing", testDeletingReplicaSet},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.test(t)
			})
		}
	})
}

// TestRestartDuringScaleUp stops the manager in the middle of a scale-up
// and starts a new one, with fresh caches and no memory of what was in
// flight: the ReplicaSet must still end with exactly its replicas.
func TestRestartDuringScaleUp(t *testing.T) {
	const replicas = 200
	ns := namespace(t)
	created := watchPodCount(t, ns)
	first := env.StartManager(t, Setup)
	rs := newReplicaSet(t, ns, "restart", replicas, nil)

	testenv.Eventually(t, timeout, func() error {
		if n := countPods(t, ns); n < 10 {
			return fmt.Errorf("%d pods so far, waiting for 10 before the restart", n)
		}
		return nil
	})
	first()
	atStop := countPods(t, ns)
	t.Logf("the first manager stopped with %d of %d pods created", atStop, replicas)
	if atStop >= replicas {
		t.Fatalf("all %d pods existed before the restart: the test did not restart mid scale-up", atStop)
	}

	env.StartManager(t, Setup)
	waitReplicas(t, rs, replicas)
	time.Sleep(2 * time.Second) // let a duplicate creation, if any, show
	if ever := created(); ever != replicas {
		t.Fatalf("%d pods were created in all, want exactly %d", ever, replicas)
	}
	assertOwnedPods(t, rs, replicas)
}

func testScaleUpAndDown(t *testing.T) {
	ns := namespace(t)
	rs := newReplicaSet(t, ns, "web", 4, nil)

	// Scale up: four pods from the template, each controlled by rs.
	pods := waitPods(t, ns, 4)
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, "web-") || p.Labels["app"] != "web" || p.Spec.NodeName != "" {
			t.Errorf("pod %s: labels %v, node %q; want a web-* pod with the template's labels and no node", p.Name, p.Labels, p.Spec.NodeName)
		}
	}
	assertOwnedPods(t, rs, 4)
	waitEvent(t, ns, rs.Name, "SuccessfulCreate", "Created pod: "+pods[0].Name)

	// Two of the four become ready: the other two must go first.
	keep := []string{pods[1].Name, pods[3].Name}
	markReady(t, &pods[1], time.Now())
	markReady(t, &pods[3], time.Now())
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 4 && s.ReadyReplicas == 2 })

	if out, err := env.Kubectl("scale", "replicasets.apps.skiff.dev/web", "-n", ns, "--replicas=2"); err != nil {
		t.Fatalf("kubectl scale: %v (%s)", err, out)
	}
	testenv.Eventually(t, timeout, func() error {
		names := podNames(listPods(t, ns))
		if !slices.Equal(names, sorted(keep)) {
			return fmt.Errorf("pods %v, want the ready ones %v", names, sorted(keep))
		}
		return nil
	})
	waitEvent(t, ns, rs.Name, "SuccessfulDelete", "Deleted pod: "+pods[0].Name)

	// The status follows, including the generation the scale produced.
	mustGet(t, rs)
	if rs.Generation < 2 {
		t.Fatalf("generation %d after a scale; want it bumped", rs.Generation)
	}
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool {
		return s.Replicas == 2 && s.ReadyReplicas == 2 && s.AvailableReplicas == 2 && s.FullyLabeledReplicas == 2 &&
			s.ObservedGeneration == rs.Generation
	})
}

func testAvailability(t *testing.T) {
	const minReady = 12
	ns := namespace(t)
	rs := newReplicaSet(t, ns, "slow", 2, func(rs *skiffappsv1.ReplicaSet) { rs.Spec.MinReadySeconds = minReady })
	pods := waitPods(t, ns, 2)

	// The Ready condition's time has second precision; the pods are
	// available from readyAt+minReady on, and not before.
	readyAt := time.Now().Truncate(time.Second)
	availableAt := readyAt.Add(minReady * time.Second)
	for i := range pods {
		markReady(t, &pods[i], readyAt)
	}
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.ReadyReplicas == 2 })
	mustGet(t, rs)
	if time.Now().Before(availableAt) && rs.Status.AvailableReplicas != 0 {
		t.Fatalf("availableReplicas %d before minReadySeconds passed", rs.Status.AvailableReplicas)
	}

	// Nothing happens to the pods any more: only the controller's own
	// requeue can make them available.
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.AvailableReplicas == 2 })
	if now := time.Now(); now.Before(availableAt) {
		t.Fatalf("pods available at %s, before readiness + minReadySeconds = %s", now, availableAt)
	}
	if late := time.Since(availableAt); late > 20*time.Second {
		t.Fatalf("pods became available %s after they should have: no requeue for minReadySeconds?", late)
	}
}

func testAdoptAndRelease(t *testing.T) {
	ns := namespace(t)
	labels := map[string]string{"app": "adopt"}

	// An orphan that matches, and a matching pod another controller owns.
	orphan := userPod(ns, "orphan", labels)
	mustCreate(t, orphan)
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other-owner", Namespace: ns}}
	mustCreate(t, other)
	foreign := userPod(ns, "foreign", labels)
	foreign.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: other.Name, UID: other.UID, Controller: ptr.To(true)}}
	mustCreate(t, foreign)

	rs := newReplicaSet(t, ns, "adopt", 2, func(rs *skiffappsv1.ReplicaSet) {
		rs.Spec.Selector.MatchLabels = labels
		rs.Spec.Template.Labels = labels
	})

	// The orphan is adopted and counts: one pod is created, not two.
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 2 })
	owned := assertOwnedPods(t, rs, 2)
	if !slices.Contains(podNames(owned), "orphan") {
		t.Fatalf("owned pods %v do not include the orphan", podNames(owned))
	}
	mustGet(t, foreign)
	if ref := metav1.GetControllerOf(foreign); ref == nil || ref.UID != other.UID {
		t.Fatalf("the foreign pod's controller is %v; it must stay the ConfigMap", ref)
	}
	if n := countPods(t, ns); n != 4-1 {
		t.Fatalf("%d pods in the namespace, want 3 (orphan, foreign, one created)", n)
	}

	// The adopted pod stops matching: it is released, and replaced.
	patch := []byte(`{"metadata":{"labels":{"app":"elsewhere"}}}`)
	if err := env.Client.Patch(context.Background(), orphan, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("relabelling the orphan: %v", err)
	}
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, orphan)
		if ref := metav1.GetControllerOf(orphan); ref != nil {
			return fmt.Errorf("the relabelled pod is still controlled by %s", ref.Name)
		}
		return nil
	})
	// status.replicas was 2 before the release too: wait for the
	// replacement itself (orphan, foreign and two owned pods).
	testenv.Eventually(t, timeout, func() error {
		if n := countPods(t, ns); n != 4 {
			return fmt.Errorf("%d pods in the namespace, want 4: the released pod's replacement is not there yet", n)
		}
		return nil
	})
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 2 })
	if owned := assertOwnedPods(t, rs, 2); slices.Contains(podNames(owned), "orphan") {
		t.Fatalf("owned pods %v still include the released pod", podNames(owned))
	}
}

func testExpectations(t *testing.T) {
	const replicas = 50
	ns := namespace(t)
	rs := newReplicaSet(t, ns, "burst", 0, nil)
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.ObservedGeneration == 1 })
	created := watchPodCount(t, ns)

	scale(t, rs, replicas)
	waitReplicas(t, rs, replicas)
	time.Sleep(2 * time.Second) // let a duplicate creation, if any, show
	if ever := created(); ever != replicas {
		t.Fatalf("%d pods were created in all, want exactly %d", ever, replicas)
	}
	assertOwnedPods(t, rs, replicas)
}

func testReplicaFailure(t *testing.T) {
	ns := namespace(t)
	policy, binding := denyPodsLabelled(t, "skiff-test/refuse")
	probe := userPod(ns, "probe", map[string]string{"skiff-test/refuse": "yes"})
	testenv.Eventually(t, timeout, func() error {
		err := env.Client.Create(context.Background(), probe.DeepCopy(), client.DryRunAll)
		if err == nil {
			return errors.New("the admission policy does not refuse pods yet")
		}
		return nil
	})

	rs := newReplicaSet(t, ns, "refused", 2, func(rs *skiffappsv1.ReplicaSet) {
		rs.Spec.Template.Labels["skiff-test/refuse"] = "yes"
	})
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool {
		c := failureCondition(s)
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == reasonFailedCreate &&
			strings.Contains(c.Message, "pods labelled skiff-test/refuse are refused")
	})
	waitEvent(t, ns, rs.Name, reasonFailedCreate, "pods labelled skiff-test/refuse are refused")
	if n := countPods(t, ns); n != 0 {
		t.Fatalf("%d pods exist though every creation was refused", n)
	}

	for _, obj := range []client.Object{binding, policy} {
		if err := env.Client.Delete(context.Background(), obj); err != nil {
			t.Fatalf("deleting %s: %v", obj.GetName(), err)
		}
	}
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 2 && failureCondition(s) == nil })
	assertOwnedPods(t, rs, 2)
}

func testTerminatingPod(t *testing.T) {
	ns := namespace(t)
	rs := newReplicaSet(t, ns, "term", 1, nil)
	pod := &waitPods(t, ns, 1)[0]

	// Bound and held, as the scheduler leaves a pod, then deleted: it stays
	// Terminating until its node agent lets it go.
	patch := fmt.Appendf(nil, `{"metadata":{"finalizers":[%q]},"spec":{"nodeName":"node-1"}}`, skiffcorev1.PodTerminationFinalizer)
	if err := env.Client.Patch(context.Background(), pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("binding the pod: %v", err)
	}
	if err := env.Client.Delete(context.Background(), pod); err != nil {
		t.Fatalf("deleting the pod: %v", err)
	}
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool {
		return s.Replicas == 1 && ptr.Deref(s.TerminatingReplicas, 0) == 1
	})
	owned := assertOwnedPods(t, rs, 1)
	if owned[0].Name == pod.Name {
		t.Fatalf("the terminating pod %s still counts as the replica", pod.Name)
	}

	// The node agent lets it go: it no longer counts as terminating.
	if err := env.Client.Patch(context.Background(), pod, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
		t.Fatalf("releasing the pod: %v", err)
	}
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool {
		return s.Replicas == 1 && ptr.Deref(s.TerminatingReplicas, 0) == 0
	})
}

func testDeletingReplicaSet(t *testing.T) {
	const hold = "skiff-test/hold"
	ns := namespace(t)
	rs := newReplicaSet(t, ns, "going", 2, func(rs *skiffappsv1.ReplicaSet) { rs.Finalizers = []string{hold} })
	pods := waitPods(t, ns, 2)
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == 2 })

	// Held by a finalizer, as the garbage collector's foreground deletion
	// holds it while it removes the pods.
	if err := env.Client.Delete(context.Background(), rs); err != nil {
		t.Fatalf("deleting the ReplicaSet: %v", err)
	}
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, rs)
		if rs.DeletionTimestamp == nil {
			return errors.New("no deletionTimestamp yet")
		}
		return nil
	})
	if err := env.Client.Delete(context.Background(), &pods[0]); err != nil {
		t.Fatalf("deleting a pod: %v", err)
	}
	time.Sleep(3 * time.Second) // time enough for a replacement, were one coming
	if got := podNames(listPods(t, ns)); !slices.Equal(got, []string{pods[1].Name}) {
		t.Fatalf("pods %v after deleting %s; want only %s: a ReplicaSet being deleted must not replace pods", got, pods[0].Name, pods[1].Name)
	}

	if err := env.Client.Patch(context.Background(), rs, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))); err != nil {
		t.Fatalf("releasing the ReplicaSet: %v", err)
	}
}

// --- helpers ---------------------------------------------------------------

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rs-"}}
	mustCreate(t, ns)
	return ns.Name
}

// newReplicaSet creates a ReplicaSet selecting app=<name>; change adjusts
// it before creation.
func newReplicaSet(t *testing.T, ns, name string, replicas int32, change func(*skiffappsv1.ReplicaSet)) *skiffappsv1.ReplicaSet {
	t.Helper()
	labels := map[string]string{"app": name}
	rs := &skiffappsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
		},
	}
	if change != nil {
		change(rs)
	}
	mustCreate(t, rs)
	return rs
}

// userPod is a bare pod, as a user would create it.
func userPod(ns, name string, labels map[string]string) *skiffcorev1.Pod {
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustGet(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("reading %s: %v", obj.GetName(), err)
	}
}

// scale sets spec.replicas through the scale subresource, as kubectl and
// autoscalers do.
func scale(t *testing.T, rs *skiffappsv1.ReplicaSet, replicas int) {
	t.Helper()
	if out, err := env.Kubectl("scale", "replicasets.apps.skiff.dev/"+rs.Name, "-n", rs.Namespace, fmt.Sprintf("--replicas=%d", replicas)); err != nil {
		t.Fatalf("kubectl scale: %v (%s)", err, out)
	}
}

// listPods lists every pod in the namespace straight from the apiserver,
// Terminating ones included, sorted by name.
func listPods(t *testing.T, ns string) []skiffcorev1.Pod {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("listing pods: %v", err)
	}
	slices.SortFunc(list.Items, func(a, b skiffcorev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return list.Items
}

func countPods(t *testing.T, ns string) int { return len(listPods(t, ns)) }

// waitPods waits until the namespace holds exactly n pods and returns them.
func waitPods(t *testing.T, ns string, n int) []skiffcorev1.Pod {
	t.Helper()
	var pods []skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		if pods = listPods(t, ns); len(pods) != n {
			return fmt.Errorf("%d pods, want %d", len(pods), n)
		}
		return nil
	})
	return pods
}

// assertOwnedPods checks that exactly n active pods are controlled by rs,
// with a reference that blocks its deletion, and returns them.
func assertOwnedPods(t *testing.T, rs *skiffappsv1.ReplicaSet, n int) []skiffcorev1.Pod {
	t.Helper()
	var owned []skiffcorev1.Pod
	for _, p := range listPods(t, rs.Namespace) {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.UID != rs.UID || p.DeletionTimestamp != nil {
			continue
		}
		if ref.Kind != "ReplicaSet" || ref.APIVersion != "apps.skiff.dev/v1" || ref.Name != rs.Name || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s has controller reference %+v; want ReplicaSet %s, blocking deletion", p.Name, ref, rs.Name)
		}
		owned = append(owned, p)
	}
	if len(owned) != n {
		t.Fatalf("%d active pods controlled by %s (%v), want %d", len(owned), rs.Name, podNames(owned), n)
	}
	return owned
}

// waitReplicas waits until rs reports n replicas and n pods exist.
func waitReplicas(t *testing.T, rs *skiffappsv1.ReplicaSet, n int32) {
	t.Helper()
	waitStatus(t, rs, func(s appsv1.ReplicaSetStatus) bool { return s.Replicas == n })
	waitPods(t, rs.Namespace, int(n))
}

func waitStatus(t *testing.T, rs *skiffappsv1.ReplicaSet, ok func(appsv1.ReplicaSetStatus) bool) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, rs)
		if !ok(rs.Status) {
			return fmt.Errorf("status of %s is %+v", rs.Name, rs.Status)
		}
		return nil
	})
}

// watchPodCount counts, until the test ends, every pod ever created in the
// namespace, through an informer: a pod created by mistake and deleted
// soon after still counts, and the informer resumes its watch where it
// stopped if the connection drops. The returned function reports the count
// so far.
func watchPodCount(t *testing.T, ns string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		t.Fatalf("creating a cache: %v", err)
	}
	inf, err := c.GetInformer(ctx, &skiffcorev1.Pod{})
	if err != nil {
		t.Fatalf("getting the pod informer: %v", err)
	}
	var mu sync.Mutex
	seen := map[types.UID]bool{}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if pod, ok := obj.(*skiffcorev1.Pod); ok {
			mu.Lock()
			seen[pod.UID] = true
			mu.Unlock()
		}
	}}); err != nil {
		t.Fatalf("adding a pod handler: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Start(ctx); err != nil {
			t.Errorf("the pod counting cache failed: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the pod counting cache did not sync")
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
}

// markReady plays the node agent: the pod runs and is ready since at.
func markReady(t *testing.T, pod *skiffcorev1.Pod, at time.Time) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, pod)
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}
		return env.Client.Status().Update(context.Background(), pod)
	})
}

// waitEvent waits for an Event about the ReplicaSet with this reason and a
// note containing text.
func waitEvent(t *testing.T, ns, rsName, reason, text string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == "ReplicaSet" && e.Regarding.Name == rsName && e.Reason == reason && strings.Contains(e.Note, text) {
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return fmt.Errorf("no %s event saying %q about %s; events: %v", reason, text, rsName, seen)
	})
}

func failureCondition(s appsv1.ReplicaSetStatus) *appsv1.ReplicaSetCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == appsv1.ReplicaSetReplicaFailure {
			return &s.Conditions[i]
		}
	}
	return nil
}

// denyPodsLabelled installs a ValidatingAdmissionPolicy and its binding
// that refuse creating skiff pods carrying the label key, and removes them
// when the test ends (if it did not).
func denyPodsLabelled(t *testing.T, key string) (*admissionv1.ValidatingAdmissionPolicy, *admissionv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "refuse-pods-"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{"core.skiff.dev"}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("!has(object.metadata.labels) || !(%q in object.metadata.labels)", key),
				Message:    fmt.Sprintf("pods labelled %s are refused", key),
			}},
		},
	}
	mustCreate(t, policy)
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
		},
	}
	mustCreate(t, binding)
	t.Cleanup(func() {
		for _, obj := range []client.Object{binding, policy} {
			if err := env.Client.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", obj.GetName(), err)
			}
		}
	})
	return policy, binding
}

func podNames(pods []skiffcorev1.Pod) []string {
	names := make([]string, len(pods))
	for i := range pods {
		names[i] = pods[i].Name
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
