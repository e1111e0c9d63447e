package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// holdFinalizer keeps a test object Terminating until the test lets it go,
// as a node agent's termination finalizer keeps a bound pod.
const holdFinalizer = "test.skiff.dev/hold"

const timeout = 60 * time.Second

// TestGarbageCollector runs one manager with only the garbage collector,
// and builds every owner chain by hand: no other controller runs.
func TestGarbageCollector(t *testing.T) {
	env.StartManager(t, func(m ctrl.Manager) error { return Setup(m) })
	t.Run("background deletion removes the whole chain", testBackground)
	t.Run("a dependent with two owners survives one of them", testTwoOwners)
	t.Run("foreground deletion waits for blocking dependents, in order", testForeground)
	t.Run("dependents without blockOwnerDeletion do not hold a foreground deletion", testForegroundNonBlocking)
	t.Run("orphan deletion leaves dependents without the reference", testOrphan)
	t.Run("a cluster-scoped owner's dependents go with it", testClusterScopedOwner)
	t.Run("no false deletions while the cache lags; a UID mismatch is collected", testCacheLagAndUIDMismatch)
	t.Run("owners of unwatched, unserved and invalid kinds", testUnwatchedAndInvalidOwners)
	t.Run("built-in kinds owned by a StatefulSet are collected", testBuiltinDependents)
	t.Run("kubectl delete --cascade=foreground", testKubectlForeground)
}

func testBackground(t *testing.T) {
	ns := namespace(t)
	dep := deployment(t, ns, "web")
	rs := replicaSet(t, ns, "web-1", ownedBy(t, dep))
	pods := []client.Object{pod(t, ns, "web-1-a", ownedBy(t, rs)), pod(t, ns, "web-1-b", ownedBy(t, rs))}

	mustDelete(t, dep)

	for _, obj := range append([]client.Object{rs}, pods...) {
		waitGone(t, obj)
	}
}

func testTwoOwners(t *testing.T) {
	ns := namespace(t)
	a := replicaSet(t, ns, "a")
	b := replicaSet(t, ns, "b")
	refB := ownedBy(t, b)
	refB.Controller = ptr.To(false)
	shared := pod(t, ns, "shared", ownedBy(t, a), refB)

	mustDelete(t, a)

	testenv.Eventually(t, timeout, func() error {
		if err := get(shared); err != nil {
			return err
		}
		if refs := shared.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != b.GetUID() {
			return fmt.Errorf("owner references %v, want only the one to b", refs)
		}
		return nil
	})
	consistently(t, 2*time.Second, func() error { return get(shared) })

	mustDelete(t, b)
	waitGone(t, shared)
}

func testForeground(t *testing.T) {
	ns := namespace(t)
	dep := deployment(t, ns, "web")
	rs := replicaSet(t, ns, "web-1", ownedBy(t, dep))
	held := pod(t, ns, "held", ownedBy(t, rs))
	free := pod(t, ns, "free", ownedBy(t, rs))
	hold(t, held)

	if err := env.Client.Delete(context.Background(), dep, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}

	waitGone(t, free)
	testenv.Eventually(t, timeout, func() error {
		if err := deletingWith(held, holdFinalizer); err != nil {
			return err
		}
		if err := deletingWith(rs, foregroundFinalizer); err != nil {
			return err
		}
		return deletingWith(dep, foregroundFinalizer)
	})
	// The held pod blocks its ReplicaSet, which blocks the Deployment.
	consistently(t, 2*time.Second, func() error {
		if err := get(rs); err != nil {
			return err
		}
		return get(dep)
	})

	release(t, held)

	// Everything goes, dependents before their owners: an owner seen gone
	// while its dependent is still there would be out of order.
	testenv.Eventually(t, timeout, func() error {
		depGone, rsGone, podGone := isGone(t, dep), isGone(t, rs), isGone(t, held)
		if depGone && !rsGone {
			t.Fatalf("the Deployment went before its ReplicaSet")
		}
		if rsGone && !podGone {
			t.Fatalf("the ReplicaSet went before its pod")
		}
		if !depGone {
			return errors.New("the Deployment is still there")
		}
		return nil
	})
}

func testForegroundNonBlocking(t *testing.T) {
	ns := namespace(t)
	dep := deployment(t, ns, "web")
	ref := ownedBy(t, dep)
	ref.BlockOwnerDeletion = ptr.To(false)
	cm := configMap(t, ns, "settings", ref)
	hold(t, cm)

	if err := env.Client.Delete(context.Background(), dep, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}

	waitGone(t, dep)
	// The dependent was deleted too, but does not hold its owner.
	if err := deletingWith(cm, holdFinalizer); err != nil {
		t.Fatal(err)
	}
	release(t, cm)
	waitGone(t, cm)
}

func testOrphan(t *testing.T) {
	ns := namespace(t)
	dep := deployment(t, ns, "web")
	rs := replicaSet(t, ns, "web-1", ownedBy(t, dep))
	p := pod(t, ns, "web-1-a", ownedBy(t, rs))

	if err := env.Client.Delete(context.Background(), dep, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
		t.Fatal(err)
	}

	waitGone(t, dep)
	consistently(t, 2*time.Second, func() error {
		if err := get(rs); err != nil {
			return err
		}
		if len(rs.GetOwnerReferences()) != 0 {
			return fmt.Errorf("the orphaned ReplicaSet still has owners %v", rs.GetOwnerReferences())
		}
		if err := get(p); err != nil {
			return err
		}
		if refs := p.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != rs.GetUID() {
			return fmt.Errorf("the pod lost its reference to its ReplicaSet: %v", refs)
		}
		return nil
	})
}

func testClusterScopedOwner(t *testing.T) {
	ns := namespace(t)
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-node-"}}
	create(t, node)
	p := pod(t, ns, "on-node", ownedBy(t, node))

	mustDelete(t, node)

	waitGone(t, p)
}

func testCacheLagAndUIDMismatch(t *testing.T) {
	ns := namespace(t)
	var children []client.Object
	// Each owner is created a moment before its dependents, so the
	// collector often sees a dependent before its owner reaches the cache.
	for i := range 10 {
		dep := deployment(t, ns, fmt.Sprintf("web-%d", i))
		rs := replicaSet(t, ns, fmt.Sprintf("web-%d-1", i), ownedBy(t, dep))
		children = append(children, rs, pod(t, ns, fmt.Sprintf("web-%d-1-a", i), ownedBy(t, rs)))
	}
	impostor := ownedBy(t, deployment(t, ns, "recreated"))
	impostor.UID = types.UID("00000000-0000-0000-0000-000000000000")
	stale := replicaSet(t, ns, "stale", impostor)

	waitGone(t, stale)
	consistently(t, 3*time.Second, func() error {
		for _, c := range children {
			if err := get(c); err != nil {
				return err
			}
		}
		return nil
	})
}

func testUnwatchedAndInvalidOwners(t *testing.T) {
	ns := namespace(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "robot"}}
	create(t, sa)
	ownedBySA := configMap(t, ns, "of-robot", ownedBy(t, sa))

	missingSA := ownedBy(t, sa)
	missingSA.Name, missingSA.UID = "gone-robot", "11111111-1111-1111-1111-111111111111"
	ownedByMissingSA := configMap(t, ns, "of-gone-robot", missingSA)

	unserved := configMap(t, ns, "of-widget", metav1.OwnerReference{
		APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "22222222-2222-2222-2222-222222222222",
	})
	// A cluster-scoped Node cannot have a namespaced owner: the reference
	// is invalid and the collector must leave the Node alone, even though
	// no such Deployment exists.
	invalid := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-node-", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: skiffappsv1.GroupVersion.String(), Kind: "Deployment", Name: "nope", UID: "33333333-3333-3333-3333-333333333333",
	}}}}
	create(t, invalid)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), invalid) })

	// An owner of a kind the collector does not watch is still verified
	// with a live read: absent, its dependent goes.
	waitGone(t, ownedByMissingSA)
	consistently(t, 3*time.Second, func() error {
		for _, obj := range []client.Object{ownedBySA, unserved, invalid} {
			if err := get(obj); err != nil {
				return err
			}
		}
		return nil
	})
}

func testBuiltinDependents(t *testing.T) {
	ns := namespace(t)
	sts := &skiffappsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Template: podTemplate("db"),
		},
	}
	create(t, sts)
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-1", OwnerReferences: []metav1.OwnerReference{ownedBy(t, sts)}},
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{}}`)},
		Revision:   1,
	}
	create(t, rev)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-db-0", OwnerReferences: []metav1.OwnerReference{ownedBy(t, sts)}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	create(t, pvc)

	mustDelete(t, sts)

	waitGone(t, rev)
	// The apiserver's pvc-protection finalizer keeps a deleted claim until
	// a controller that skiff does not run releases it: deleted is enough.
	testenv.Eventually(t, timeout, func() error {
		err := get(pvc)
		if apierrors.IsNotFound(err) || (err == nil && pvc.DeletionTimestamp != nil) {
			return nil
		}
		return fmt.Errorf("the claim is not deleted (err %v)", err)
	})
}

func testKubectlForeground(t *testing.T) {
	ns := namespace(t)
	dep := deployment(t, ns, "web")
	rs := replicaSet(t, ns, "web-1", ownedBy(t, dep))
	p := pod(t, ns, "web-1-a", ownedBy(t, rs))

	// kubectl waits until the Deployment is gone, which in foreground means
	// after its ReplicaSet and pod.
	if _, err := env.Kubectl("delete", "deployments.apps.skiff.dev", "web", "-n", ns, "--cascade=foreground", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{dep, rs, p} {
		if !isGone(t, obj) {
			t.Errorf("%s %s is still there after kubectl returned", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName())
		}
	}
}

// namespace creates a namespace for one test, so that tests never see each
// other's objects.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "gc-"}}
	create(t, ns)
	return ns.Name
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func mustDelete(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Delete(context.Background(), obj); err != nil {
		t.Fatalf("deleting %T %s: %v", obj, obj.GetName(), err)
	}
}

func get(obj client.Object) error {
	return env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
}

// ownedBy is the reference a controller would set: controller and
// blockOwnerDeletion, with the owner's real UID.
func ownedBy(t *testing.T, owner client.Object) metav1.OwnerReference {
	t.Helper()
	gvk, err := apiutil.GVKForObject(owner, env.Scheme)
	if err != nil {
		t.Fatal(err)
	}
	return *metav1.NewControllerRef(owner, gvk)
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
}

func deployment(t *testing.T, ns, name string, owners ...metav1.OwnerReference) *skiffappsv1.Deployment {
	t.Helper()
	d := &skiffappsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	create(t, d)
	return d
}

func replicaSet(t *testing.T, ns, name string, owners ...metav1.OwnerReference) *skiffappsv1.ReplicaSet {
	t.Helper()
	rs := &skiffappsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	create(t, rs)
	return rs
}

func pod(t *testing.T, ns, name string, owners ...metav1.OwnerReference) *skiffcorev1.Pod {
	t.Helper()
	p := &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners},
		Spec:       podTemplate(name).Spec,
	}
	create(t, p)
	return p
}

func configMap(t *testing.T, ns, name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: owners}}
	create(t, cm)
	return cm
}

// hold adds the test finalizer to obj.
func hold(t *testing.T, obj client.Object) {
	t.Helper()
	setFinalizers(t, obj, func(f []string) []string { return append(f, holdFinalizer) })
}

// release removes the test finalizer from obj.
func release(t *testing.T, obj client.Object) {
	t.Helper()
	setFinalizers(t, obj, func(f []string) []string {
		return slices.DeleteFunc(f, func(s string) bool { return s == holdFinalizer })
	})
}

func setFinalizers(t *testing.T, obj client.Object, edit func([]string) []string) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if err := get(obj); err != nil {
			return err
		}
		before := obj.DeepCopyObject().(client.Object)
		obj.SetFinalizers(edit(slices.Clone(obj.GetFinalizers())))
		return env.Client.Patch(context.Background(), obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
}

// deletingWith checks that obj is Terminating, held by finalizer.
func deletingWith(obj client.Object, finalizer string) error {
	if err := get(obj); err != nil {
		return err
	}
	if obj.GetDeletionTimestamp() == nil || !slices.Contains(obj.GetFinalizers(), finalizer) {
		return fmt.Errorf("%s: deletionTimestamp %v, finalizers %v; want deleting with %s",
			obj.GetName(), obj.GetDeletionTimestamp(), obj.GetFinalizers(), finalizer)
	}
	return nil
}

func isGone(t *testing.T, obj client.Object) bool {
	t.Helper()
	err := get(obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("reading %s: %v", obj.GetName(), err)
	}
	return apierrors.IsNotFound(err)
}

func waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		if isGone(t, obj) {
			return nil
		}
		return fmt.Errorf("%T %s still exists (deletionTimestamp %v, finalizers %v, owners %v)",
			obj, obj.GetName(), obj.GetDeletionTimestamp(), obj.GetFinalizers(), obj.GetOwnerReferences())
	})
}

// consistently fails the test if check fails at any time during d.
func consistently(t *testing.T, d time.Duration, check func() error) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
}

// notSyncedCache stands in for an informer cache that has not caught up
// with the apiserver: it has seen nothing yet.
type notSyncedCache struct{}

func (notSyncedCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	return apierrors.NewNotFound(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, key.Name)
}

func (notSyncedCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

// TestAbsenceIsVerifiedLive proves, without relying on timing, that an
// owner missing from the cache is looked up live before its dependent is
// deleted: the dependent of an owner that exists survives, the dependent of
// an owner that is really gone is deleted.
func TestAbsenceIsVerifiedLive(t *testing.T) {
	hc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(env.Config, hc)
	if err != nil {
		t.Fatal(err)
	}
	gc := &GarbageCollector{cache: notSyncedCache{}, live: env.Client, writer: env.Client, mapper: mapper}

	ns := namespace(t)
	kept := replicaSet(t, ns, "kept", ownedBy(t, deployment(t, ns, "present")))
	gone := deployment(t, ns, "gone")
	collected := replicaSet(t, ns, "collected", ownedBy(t, gone))
	mustDelete(t, gone) // no collector runs in this test: only the call below acts
	waitGone(t, gone)

	for _, rs := range []*skiffappsv1.ReplicaSet{kept, collected} {
		m := newMeta(skiffappsv1.GroupVersion.WithKind("ReplicaSet"))
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(rs), m); err != nil {
			t.Fatal(err)
		}
		if err := gc.attemptToDelete(context.Background(), m); err != nil {
			t.Fatalf("attemptToDelete(%s): %v", rs.Name, err)
		}
	}
	if err := get(kept); err != nil || kept.DeletionTimestamp != nil {
		t.Fatalf("the dependent of a present owner was deleted (err %v, deletionTimestamp %v)", err, kept.DeletionTimestamp)
	}
	waitGone(t, collected)
}
