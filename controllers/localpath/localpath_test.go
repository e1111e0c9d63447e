package localpath

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/controllers/statefulset"
	"skiff.dev/skiff/internal/testenv"
)

// timeout bounds every wait: the machine running the suite is shared and
// loaded.
const timeout = 60 * time.Second

func bg() context.Context { return context.Background() }

// TestLocalPath runs the controller alone: pods are created already bound
// to a node that nobody runs, which is all a WaitForFirstConsumer binding
// looks at.
func TestLocalPath(t *testing.T) {
	env.StartManager(t, Setup)
	testenv.Eventually(t, timeout, func() error {
		var class storagev1.StorageClass
		if err := env.Client.Get(bg(), client.ObjectKey{Name: ClassName}, &class); err != nil {
			return fmt.Errorf("the controller has not created the local-path class: %w", err)
		}
		if class.Provisioner != Provisioner || !waitsForConsumer(&class) || class.Annotations[isDefaultClassAnnotation] != "true" {
			return fmt.Errorf("class %+v: want the default class DefaultClass describes", class)
		}
		return nil
	})
	t.Run("group", func(t *testing.T) {
		t.Run("a claim waits for its first consumer, is bound on its node, and its volume goes with it", testClaimLifecycle)
		t.Run("a claim of another provisioner's class is left alone, but its deletion completes", testOtherClass)
	})
}

func testClaimLifecycle(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t, "lp-")
	claim := newClaim(t, ns, "data", nil, "2Gi")
	if got := ptr.Deref(claim.Spec.StorageClassName, ""); got != ClassName {
		t.Fatalf("the apiserver gave the claim class %q, want the default %s", got, ClassName)
	}

	// 1. No consumer: Pending, with the event saying why.
	waitForEvents(t, claim, "WaitForFirstConsumer")
	get(t, claim)
	if claim.Spec.VolumeName != "" || claim.Status.Phase != corev1.ClaimPending {
		t.Fatalf("a claim with no consumer has volume %q and phase %s, want none and Pending", claim.Spec.VolumeName, claim.Status.Phase)
	}

	// 2. A pod using it is bound to n1: a volume on n1, both Bound.
	pod := newPod(t, ns, "user", "n1", "data")
	pv := waitBound(t, claim)
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
		t.Errorf("volume capacity %s, want the claim's 2Gi", got.String())
	}
	if want := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}; !reflect.DeepEqual(pv.Spec.AccessModes, want) {
		t.Errorf("volume access modes %v, want %v", pv.Spec.AccessModes, want)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != ns || ref.Name != "data" || ref.UID != claim.UID {
		t.Errorf("volume claimRef %+v, want %s/data uid %s", ref, ns, claim.UID)
	}
	if got := affinityNodes(pv); !reflect.DeepEqual(got, []string{"n1"}) {
		t.Errorf("volume pinned to %v, want [n1]", got)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Annotations[annProvisionedBy] != Provisioner {
		t.Errorf("volume reclaim %s annotations %v, want Delete and provisioned-by %s", pv.Spec.PersistentVolumeReclaimPolicy, pv.Annotations, Provisioner)
	}
	if claim.Annotations[annSelectedNode] != "n1" || claim.Annotations[annBindCompleted] != "yes" {
		t.Errorf("claim annotations %v, want selected-node n1 and bind-completed", claim.Annotations)
	}
	if got := claim.Status.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 || !reflect.DeepEqual(claim.Status.AccessModes, pv.Spec.AccessModes) {
		t.Errorf("claim status %+v, want the volume's capacity and access modes", claim.Status)
	}
	waitForEvents(t, claim, "WaitForFirstConsumer", "Provisioning", "ProvisioningSucceeded")

	// 3. Deleted while the pod uses it: the claim and its volume stay.
	if err := env.Client.Delete(bg(), claim); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	get(t, claim)
	if claim.DeletionTimestamp == nil {
		t.Fatal("the deleted claim has no deletionTimestamp")
	}
	get(t, pv)
	if pv.Status.Phase != corev1.VolumeBound {
		t.Errorf("the volume of a claim still in use is %s, want Bound", pv.Status.Phase)
	}

	// 4. Once the pod is gone, the claim goes, and its volume after it.
	if err := env.Client.Delete(bg(), pod); err != nil {
		t.Fatal(err)
	}
	waitGone(t, claim)
	waitGone(t, pv)
}

func testOtherClass(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t, "lp-")
	other := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: "other-" + ns},
		Provisioner:       "example.com/other",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
	create(t, other)
	t.Cleanup(func() { _ = env.Client.Delete(bg(), other) })
	theirs := newClaim(t, ns, "theirs", &other.Name, "1Gi")
	ours := newClaim(t, ns, "ours", ptr.To(ClassName), "1Gi")
	pod := newPod(t, ns, "user", "n1", "theirs", "ours")

	// Once ours is bound, the controller has seen the pod: theirs was
	// passed over, not merely not yet reached.
	waitBound(t, ours)
	get(t, theirs)
	if theirs.Spec.VolumeName != "" || theirs.Status.Phase != corev1.ClaimPending || theirs.Annotations[annSelectedNode] != "" {
		t.Errorf("the other class's claim has volume %q, phase %s, annotations %v: want it untouched",
			theirs.Spec.VolumeName, theirs.Status.Phase, theirs.Annotations)
	}
	var pv corev1.PersistentVolume
	if err := env.Client.Get(bg(), client.ObjectKey{Name: volumeName(theirs)}, &pv); !apierrors.IsNotFound(err) {
		t.Errorf("a volume was provisioned for the other class's claim: %v", err)
	}
	if evs := claimEvents(t, theirs); len(evs) != 0 {
		t.Errorf("events about the other class's claim: %v, want none", evs)
	}

	// Claim protection holds for every claim: nothing else would release it.
	if err := env.Client.Delete(bg(), pod); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(bg(), theirs); err != nil {
		t.Fatal(err)
	}
	waitGone(t, theirs)
}

// TestStatefulSetClaimsAreBound runs the scheduler, the StatefulSet
// controller and simulated nodes with the provisioner: each ordinal's
// claim is bound to a volume on the node its pod landed on.
func TestStatefulSetClaimsAreBound(t *testing.T) {
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: "lp-node", Count: 2})
	env.StartManager(t, func(m ctrl.Manager) error {
		return errors.Join(scheduler.Setup(m, scheduler.Config{}), statefulset.Setup(m), Setup(m))
	})
	ns := env.Namespace(t, "lp-")
	template := corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	set := &skiffappsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To[int32](2),
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{template},
		},
	}
	create(t, set)

	for _, name := range []string{"web-0", "web-1"} {
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + name}}
		pv := waitBound(t, claim)
		var pod skiffcorev1.Pod
		if err := env.Client.Get(bg(), client.ObjectKey{Namespace: ns, Name: name}, &pod); err != nil {
			t.Fatal(err)
		}
		if got := affinityNodes(pv); !reflect.DeepEqual(got, []string{pod.Spec.NodeName}) {
			t.Errorf("claim %s: volume pinned to %v, want its pod's node %s", claim.Name, got, pod.Spec.NodeName)
		}
	}
}

// --- helpers ---

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(bg(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func get(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(bg(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
}

// newClaim creates a ReadWriteOnce claim of size; a nil class leaves the
// choice to the apiserver's default class admission.
func newClaim(t *testing.T, ns, name string, class *string, size string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	create(t, c)
	return c
}

// newPod creates a skiff Pod already bound to node, using the claims.
func newPod(t *testing.T, ns, name, node string, claims ...string) *skiffcorev1.Pod {
	t.Helper()
	p := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c},
		}})
	}
	create(t, p)
	return p
}

// waitBound waits until the claim and its volume are both Bound to each
// other, and returns the volume; claim is updated.
func waitBound(t *testing.T, claim *corev1.PersistentVolumeClaim) *corev1.PersistentVolume {
	t.Helper()
	var pv corev1.PersistentVolume
	testenv.Eventually(t, timeout, func() error {
		if err := env.Client.Get(bg(), client.ObjectKeyFromObject(claim), claim); err != nil {
			return err
		}
		if claim.Spec.VolumeName == "" || claim.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim %s has volume %q and phase %s, want a volume and Bound", claim.Name, claim.Spec.VolumeName, claim.Status.Phase)
		}
		if err := env.Client.Get(bg(), client.ObjectKey{Name: claim.Spec.VolumeName}, &pv); err != nil {
			return err
		}
		if pv.Status.Phase != corev1.VolumeBound {
			return fmt.Errorf("volume %s is %s, want Bound", pv.Name, pv.Status.Phase)
		}
		return nil
	})
	if pv.Name != volumeName(claim) {
		t.Errorf("claim %s is bound to %s, want %s", claim.Name, pv.Name, volumeName(claim))
	}
	return &pv
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		err := env.Client.Get(bg(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("%T %s still exists (finalizers %v): %v", obj, obj.GetName(), obj.GetFinalizers(), err)
	})
}

// waitForEvents waits until the provisioner's events about the claim
// include every reason in want.
func waitForEvents(t *testing.T, claim *corev1.PersistentVolumeClaim, want ...string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		got := claimEvents(t, claim)
		for _, reason := range want {
			if !slices.Contains(got, reason) {
				return fmt.Errorf("events about claim %s: %v, want %v", claim.Name, got, want)
			}
		}
		return nil
	})
}

// claimEvents returns the reasons of the provisioner's events about the
// claim.
func claimEvents(t *testing.T, claim *corev1.PersistentVolumeClaim) []string {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(bg(), &list, client.InNamespace(claim.Namespace)); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "PersistentVolumeClaim" && e.Regarding.Name == claim.Name && e.ReportingController == "local-path-provisioner" {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}
