package statefulset

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/simulated"
)

// timeout bounds every wait: the machine running the suite is shared and
// loaded.
const timeout = 60 * time.Second

func bg() context.Context { return context.Background() }

// TestStatefulSet runs one manager with the scheduler and the StatefulSet
// controller, and simulated nodes that take pods to Running and Ready, and
// runs the scenarios in parallel, each in its own namespace.
func TestStatefulSet(t *testing.T) {
	startNodes(t, "sts-node", 2)
	env.StartManager(t, func(m ctrl.Manager) error {
		if err := scheduler.Setup(m, scheduler.Config{}); err != nil {
			return err
		}
		return Setup(m)
	})
	t.Run("group", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			test func(*testing.T)
		}{
			{"OrderedReady creates each ordinal after the lower ones are ready, with stable identity and claims", testOrderedCreation},
			{"Parallel creates every pod at once; OrderedReady waits for pod 0", testParallel},
			{"scale down removes the highest ordinal first", testScaleDown},
			{"a deleted pod comes back with its name and its claim", testReplaceDeleted},
			{"retention policy Delete puts ownerReferences on the claims", testRetentionPolicy},
			{"a template change rolls the pods from the highest ordinal", testRollingUpdate},
			{"a partition keeps the lower ordinals at the current revision, even when recreated", testPartition},
			{"OnDelete updates a pod only when it is deleted", testOnDelete},
			{"an orphan with a matching name and labels is adopted, not duplicated", testAdoption},
			{"minReadySeconds: available counts, creation and rollout wait for it", testMinReadySeconds},
			{"maxUnavailable replaces several pods at once, down to the partition", testMaxUnavailable},
			{"ordinals.start names the pods; moving it moves them in order", testOrdinalsStart},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.test(t)
			})
		}
	})
}

func testOrderedCreation(t *testing.T) {
	ns := namespace(t)
	order := watchTimeline(t, ns)
	set := newSet(t, ns, "web", 3, func(s *skiffappsv1.StatefulSet) {
		s.Spec.ServiceName = "web-svc"
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
	})
	waitReady(t, ns, "web", 3)

	// Each pod was created only after every lower ordinal was ready.
	for i := 1; i < 3; i++ {
		if err := order.createdAfterReady(podName(set, i), podName(set, i-1)); err != nil {
			t.Error(err)
		}
	}

	// Identity: names, hostname, subdomain, labels, controller, claims.
	mustGet(t, set)
	for i, p := range listPods(t, ns) {
		name := fmt.Sprintf("web-%d", i)
		if p.Name != name || p.Spec.Hostname != name || p.Spec.Subdomain != "web-svc" {
			t.Errorf("pod %s: hostname %q subdomain %q, want %s, %s, web-svc", p.Name, p.Spec.Hostname, p.Spec.Subdomain, name, name)
		}
		want := map[string]string{
			appsv1.StatefulSetPodNameLabel:        name,
			appsv1.PodIndexLabel:                  strconv.Itoa(i),
			appsv1.ControllerRevisionHashLabelKey: set.Status.UpdateRevision,
			"app":                                 "web",
		}
		for k, v := range want {
			if p.Labels[k] != v {
				t.Errorf("pod %s: label %s=%q, want %q", p.Name, k, p.Labels[k], v)
			}
		}
		if !metav1.IsControlledBy(&p, set) {
			t.Errorf("pod %s is not controlled by its set: %v", p.Name, p.OwnerReferences)
		}
		claim := "data-" + name
		if !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool {
			return v.Name == "data" && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim
		}) {
			t.Errorf("pod %s has no volume data for claim %s: %+v", p.Name, claim, p.Spec.Volumes)
		}
		var pvc corev1.PersistentVolumeClaim
		if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: claim}, &pvc); err != nil {
			t.Errorf("claim %s: %v", claim, err)
		} else if len(pvc.OwnerReferences) != 0 {
			t.Errorf("claim %s has owners %v under the default Retain policy", claim, pvc.OwnerReferences)
		}
	}

	// Events as upstream's, about the set.
	testenv.Eventually(t, timeout, func() error {
		notes := setEvents(t, ns, "web")
		for _, want := range []string{
			"SuccessfulCreate: Create Pod web-0 in StatefulSet web successful",
			"SuccessfulCreate: Create Pod web-2 in StatefulSet web successful",
			"SuccessfulCreate: Create Claim data-web-1 Pod web-1 in StatefulSet web success",
		} {
			if !slices.Contains(notes, want) {
				return fmt.Errorf("events %q, want %q among them", notes, want)
			}
		}
		return nil
	})

	// Status and revision.
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.Replicas == 3 && s.ReadyReplicas == 3 && s.AvailableReplicas == 3 && s.CurrentReplicas == 3 &&
			s.UpdatedReplicas == 3 && s.CurrentRevision == s.UpdateRevision && s.ObservedGeneration == set.Generation
	})
	var rev appsv1.ControllerRevision
	if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: set.Status.UpdateRevision}, &rev); err != nil {
		t.Fatalf("update revision %q: %v", set.Status.UpdateRevision, err)
	}
	if tmpl, err := decodeTemplate(&rev); err != nil || tmpl.Spec.Containers[0].Image != "nginx:1.27" || !metav1.IsControlledBy(&rev, set) {
		t.Errorf("revision %s: template %+v, err %v, owners %v; want the set's template, controlled by the set", rev.Name, tmpl, err, rev.OwnerReferences)
	}
}

func testParallel(t *testing.T) {
	ns := namespace(t)
	// No node matches: the pods never run, so only the policy decides
	// how many are created.
	nowhere := func(s *skiffappsv1.StatefulSet) {
		s.Spec.Template.Spec.NodeSelector = map[string]string{"nowhere": "true"}
	}
	newSet(t, ns, "par", 3, func(s *skiffappsv1.StatefulSet) {
		nowhere(s)
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	})
	newSet(t, ns, "ord", 3, nowhere)
	testenv.Eventually(t, timeout, func() error {
		if got := podNames(listPods(t, ns)); !slices.Equal(got, []string{"ord-0", "par-0", "par-1", "par-2"}) {
			return fmt.Errorf("pods %v, want par-0..2 and ord-0", got)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // give a wrong extra creation time to show
	if got := podNames(listPods(t, ns)); !slices.Equal(got, []string{"ord-0", "par-0", "par-1", "par-2"}) {
		t.Fatalf("pods %v, want only ord-0 of the OrderedReady set", got)
	}
}

func testScaleDown(t *testing.T) {
	ns := namespace(t)
	order := watchTimeline(t, ns)
	set := newSet(t, ns, "down", 3, nil)
	waitReady(t, ns, "down", 3)
	scale(t, set, 1)
	testenv.Eventually(t, timeout, func() error {
		if got := podNames(listPods(t, ns)); !slices.Equal(got, []string{"down-0"}) {
			return fmt.Errorf("pods %v, want down-0", got)
		}
		return nil
	})
	if err := order.deletedBeforeDeleting("down-2", "down-1"); err != nil {
		t.Error(err)
	}
	mustGet(t, set)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.Replicas == 1 && s.ReadyReplicas == 1 && s.ObservedGeneration == set.Generation
	})
}

func testReplaceDeleted(t *testing.T) {
	ns := namespace(t)
	newSet(t, ns, "keep", 2, func(s *skiffappsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
	})
	pods := waitReady(t, ns, "keep", 2)
	var claim corev1.PersistentVolumeClaim
	if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: "data-keep-1"}, &claim); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(bg(), &pods[1]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		for _, p := range waitReady(t, ns, "keep", 2) {
			if p.Name == "keep-1" && p.UID == pods[1].UID {
				return fmt.Errorf("keep-1 is still the old pod")
			}
		}
		return nil
	})
	var after corev1.PersistentVolumeClaim
	if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: "data-keep-1"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.UID != claim.UID {
		t.Fatalf("claim data-keep-1 was recreated (uid %s, was %s): it must outlive its pod", after.UID, claim.UID)
	}
}

func testRetentionPolicy(t *testing.T) {
	ns := namespace(t)
	set := newSet(t, ns, "ret", 2, func(s *skiffappsv1.StatefulSet) {
		s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
		s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
	})
	pods := waitReady(t, ns, "ret", 2)
	for _, name := range []string{"data-ret-0", "data-ret-1"} {
		if kinds := claimOwnerKinds(t, ns, name); !slices.Equal(kinds, []string{"StatefulSet/ret"}) {
			t.Errorf("claim %s owners %v, want the set only", name, kinds)
		}
	}
	scale(t, set, 1)
	// The condemned ordinal's claim gains its pod as owner, so that the
	// garbage collector deletes it with the pod; the kept one does not.
	testenv.Eventually(t, timeout, func() error {
		if kinds := claimOwnerKinds(t, ns, "data-ret-1"); !slices.Equal(kinds, []string{"Pod/ret-1", "StatefulSet/ret"}) {
			return fmt.Errorf("claim data-ret-1 owners %v, want its pod and the set", kinds)
		}
		return nil
	})
	var claim corev1.PersistentVolumeClaim
	if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: "data-ret-1"}, &claim); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(claim.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == pods[1].UID }) {
		t.Errorf("claim data-ret-1 owners %v do not name pod ret-1 (uid %s)", claim.OwnerReferences, pods[1].UID)
	}
	if kinds := claimOwnerKinds(t, ns, "data-ret-0"); !slices.Equal(kinds, []string{"StatefulSet/ret"}) {
		t.Errorf("claim data-ret-0 owners %v, want the set only", kinds)
	}
}

func testRollingUpdate(t *testing.T) {
	ns := namespace(t)
	order := watchTimeline(t, ns)
	set := newSet(t, ns, "roll", 3, func(s *skiffappsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptr.To[int32](0) })
	waitReady(t, ns, "roll", 3)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool { return s.CurrentRevision != "" && s.UpdatedReplicas == 3 })
	first := set.Status.UpdateRevision

	setImage(t, set, "nginx:1.28")
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.UpdateRevision != first && s.CurrentRevision == s.UpdateRevision && s.UpdatedReplicas == 3 && s.ReadyReplicas == 3
	})
	for _, p := range listPods(t, ns) {
		if p.Spec.Containers[0].Image != "nginx:1.28" || p.Labels[appsv1.ControllerRevisionHashLabelKey] != set.Status.UpdateRevision {
			t.Errorf("pod %s: image %s revision %s, want nginx:1.28 at %s", p.Name, p.Spec.Containers[0].Image,
				p.Labels[appsv1.ControllerRevisionHashLabelKey], set.Status.UpdateRevision)
		}
	}
	if err := order.deletedBeforeDeleting("roll-2", "roll-1"); err != nil {
		t.Error(err)
	}
	if err := order.deletedBeforeDeleting("roll-1", "roll-0"); err != nil {
		t.Error(err)
	}
	// With revisionHistoryLimit 0, the old revision goes once no pod runs it.
	testenv.Eventually(t, timeout, func() error {
		var rev appsv1.ControllerRevision
		err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: first}, &rev)
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("old revision %s: %v, want it deleted", first, err)
		}
		return env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: set.Status.UpdateRevision}, &rev)
	})
}

func testPartition(t *testing.T) {
	ns := namespace(t)
	set := newSet(t, ns, "part", 3, func(s *skiffappsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
			Type:          appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)},
		}
	})
	waitReady(t, ns, "part", 3)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool { return s.CurrentRevision != "" && s.CurrentReplicas == 3 })
	first := set.Status.CurrentRevision
	setImage(t, set, "nginx:1.28")
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.UpdateRevision != first && s.UpdatedReplicas == 1 && s.CurrentReplicas == 2 && s.ReadyReplicas == 3
	})
	if set.Status.CurrentRevision != first {
		t.Errorf("currentRevision %s, want %s while the partition holds", set.Status.CurrentRevision, first)
	}
	// A pod below the partition that is deleted comes back at the
	// current revision.
	pods := waitReady(t, ns, "part", 3)
	if err := env.Client.Delete(bg(), &pods[0]); err != nil {
		t.Fatal(err)
	}
	old := pods[0].UID
	testenv.Eventually(t, timeout, func() error {
		pods = waitReady(t, ns, "part", 3)
		if pods[0].UID == old {
			return fmt.Errorf("part-0 is still the old pod")
		}
		for i, p := range pods {
			want := "nginx:1.27"
			if i >= 2 {
				want = "nginx:1.28"
			}
			if p.Spec.Containers[0].Image != want {
				return fmt.Errorf("pod %s runs %s, want %s", p.Name, p.Spec.Containers[0].Image, want)
			}
		}
		return nil
	})
}

func testOnDelete(t *testing.T) {
	ns := namespace(t)
	set := newSet(t, ns, "ondel", 2, func(s *skiffappsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	})
	before := waitReady(t, ns, "ondel", 2)
	setImage(t, set, "nginx:1.28")
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.UpdateRevision != s.CurrentRevision && s.UpdatedReplicas == 0
	})
	time.Sleep(2 * time.Second) // give a wrong rollout time to start
	for i, p := range waitReady(t, ns, "ondel", 2) {
		if p.UID != before[i].UID {
			t.Fatalf("pod %s was replaced under OnDelete", p.Name)
		}
	}
	if err := env.Client.Delete(bg(), &before[1]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		pods := waitReady(t, ns, "ondel", 2)
		if pods[1].Spec.Containers[0].Image != "nginx:1.28" || pods[0].UID != before[0].UID {
			return fmt.Errorf("ondel-1 runs %s, want nginx:1.28; ondel-0 replaced: %v", pods[1].Spec.Containers[0].Image, pods[0].UID != before[0].UID)
		}
		return nil
	})
}

func testAdoption(t *testing.T) {
	ns := namespace(t)
	nowhere := map[string]string{"nowhere": "true"}
	set := newSet(t, ns, "adopt", 1, func(s *skiffappsv1.StatefulSet) { s.Spec.Template.Spec.NodeSelector = nowhere })
	// An orphan named after ordinal 1, with the set's labels, appears
	// after the set: the set adopts it (the pod watch wakes it for orphans).
	orphan := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "adopt-1", Namespace: ns, Labels: map[string]string{"app": "adopt"}},
		Spec:       corev1.PodSpec{NodeSelector: nowhere, Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
	if err := env.Client.Create(bg(), orphan); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		var p skiffcorev1.Pod
		if err := env.Client.Get(bg(), client.ObjectKeyFromObject(orphan), &p); err != nil {
			return err
		}
		if !metav1.IsControlledBy(&p, set) {
			return fmt.Errorf("adopt-1 owners %v, want the set as controller", p.OwnerReferences)
		}
		return nil
	})
	// adopt-1 is above replicas, but OrderedReady removes it only once
	// adopt-0 is ready, which it never is here. Scaling to 2 keeps it:
	// the set must count it rather than create a second adopt-1.
	scale(t, set, 2)
	time.Sleep(2 * time.Second)
	if got := podNames(listPods(t, ns)); !slices.Equal(got, []string{"adopt-0", "adopt-1"}) {
		t.Fatalf("pods %v, want adopt-0 and the adopted adopt-1", got)
	}
}

// --- helpers ---

func setImage(t *testing.T, set *skiffappsv1.StatefulSet, image string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, set)
		set.Spec.Template.Spec.Containers[0].Image = image
		return env.Client.Update(bg(), set)
	})
}

// startNodes runs n simulated nodes until the test ends.
func startNodes(t *testing.T, prefix string, n int) {
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: prefix, Count: n, CPU: "8",
		Runtime: simulated.Options{StartDelay: 300 * time.Millisecond}})
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sts-"}}
	if err := env.Client.Create(bg(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func claimTemplate(name string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// newSet creates a StatefulSet selecting app=<name>; change adjusts it
// before creation.
func newSet(t *testing.T, ns, name string, replicas int32, change func(*skiffappsv1.StatefulSet)) *skiffappsv1.StatefulSet {
	t.Helper()
	set := &skiffappsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "nginx:1.27",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
				}}},
			},
		},
	}
	if change != nil {
		change(set)
	}
	if err := env.Client.Create(bg(), set); err != nil {
		t.Fatalf("creating StatefulSet %s: %v", name, err)
	}
	return set
}

func mustGet(t *testing.T, set *skiffappsv1.StatefulSet) {
	t.Helper()
	if err := env.Client.Get(bg(), client.ObjectKeyFromObject(set), set); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, set *skiffappsv1.StatefulSet, replicas int32) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas))
	if err := env.Client.Patch(bg(), set, patch); err != nil {
		t.Fatal(err)
	}
}

// listPods returns the namespace's pods that are not being deleted,
// sorted by name.
func listPods(t *testing.T, ns string) []skiffcorev1.Pod {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(bg(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := slices.DeleteFunc(list.Items, func(p skiffcorev1.Pod) bool { return p.DeletionTimestamp != nil })
	slices.SortFunc(out, func(a, b skiffcorev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func podNames(pods []skiffcorev1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

// waitReady waits until the set's pods are exactly <name>-0..n-1, all
// Running and Ready, and returns them.
func waitReady(t *testing.T, ns, name string, n int) []skiffcorev1.Pod {
	t.Helper()
	return waitReadyFrom(t, ns, name, 0, n)
}

// waitReadyFrom waits until the set's pods are exactly <name>-start to
// <name>-(start+n-1), all Running and Ready, and returns them by name.
func waitReadyFrom(t *testing.T, ns, name string, start, n int) []skiffcorev1.Pod {
	t.Helper()
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("%s-%d", name, start+i))
	}
	slices.Sort(want)
	var pods []skiffcorev1.Pod
	testenv.Eventually(t, timeout, func() error {
		pods = listPods(t, ns)
		if got := podNames(pods); !slices.Equal(got, want) {
			return fmt.Errorf("pods %v, want %v", got, want)
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || !podutil.IsReady(&p) {
				return fmt.Errorf("pod %s is %s, not ready yet", p.Name, p.Status.Phase)
			}
		}
		return nil
	})
	return pods
}

func waitStatus(t *testing.T, set *skiffappsv1.StatefulSet, ok func(appsv1.StatefulSetStatus) bool) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		mustGet(t, set)
		if !ok(set.Status) {
			return fmt.Errorf("status %+v not as wanted yet", set.Status)
		}
		return nil
	})
}

// setEvents returns the events about the set named name from the
// StatefulSet controller, as "reason: note".
func setEvents(t *testing.T, ns, name string) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(bg(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "StatefulSet" && e.Regarding.Name == name && e.ReportingController == "statefulset-controller" {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

func claimOwnerKinds(t *testing.T, ns, name string) []string {
	t.Helper()
	var claim corev1.PersistentVolumeClaim
	if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: name}, &claim); err != nil {
		t.Fatalf("claim %s: %v", name, err)
	}
	var out []string
	for _, r := range claim.OwnerReferences {
		out = append(out, r.Kind+"/"+r.Name)
	}
	slices.Sort(out)
	return out
}
