package deployment

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/testenv"
)

// TestAdoptionAndRelease creates an orphan ReplicaSet that a running
// Deployment selects: the Deployment adopts it (controller ownerReference)
// and, as for any old ReplicaSet, scales it to zero. Relabelled so that the
// selector no longer matches, the ReplicaSet is released again.
func TestAdoptionAndRelease(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "adopt")
	d := newDeployment("adopt", 1, "nginx:1")
	createComplete(t, d)

	// Its own selector keeps the orphan's pods apart from the Deployment's.
	orphanLabels := map[string]string{"app": "adopt", "origin": "orphan"}
	orphan := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "adopt-orphan", Namespace: d.Namespace, Labels: orphanLabels}}
	orphan.Spec.Replicas = ptr.To[int32](1)
	orphan.Spec.Selector = &metav1.LabelSelector{MatchLabels: orphanLabels}
	orphan.Spec.Template.Labels = orphanLabels
	orphan.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "nginx:0"}}
	if err := env.Client.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	waitForReplicaSet(t, orphan, "adopted and scaled down", func() error {
		if !metav1.IsControlledBy(orphan, d) {
			return fmt.Errorf("controller %v, want Deployment %s", metav1.GetControllerOf(orphan), d.Name)
		}
		if n := ptr.Deref(orphan.Spec.Replicas, 1); n != 0 {
			return fmt.Errorf("%d replicas, want 0: an adopted ReplicaSet with another template is old", n)
		}
		return nil
	})

	patched := orphan.DeepCopy()
	patched.Labels = map[string]string{"app": "adopt-elsewhere", "origin": "orphan"}
	if err := env.Client.Patch(ctx, patched, client.MergeFrom(orphan)); err != nil {
		t.Fatal(err)
	}
	waitForReplicaSet(t, orphan, "released", func() error {
		if ref := metav1.GetControllerOf(orphan); ref != nil {
			return fmt.Errorf("still controlled by %s %s", ref.Kind, ref.Name)
		}
		return nil
	})
	waitForRollout(t, d, "the Deployment keeps its own ReplicaSet", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if len(rss) != 1 || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("%d ReplicaSets, %d available", len(rss), d.Status.AvailableReplicas)
		}
		return nil
	})
}

// waitForReplicaSet waits until check accepts rs, re-read.
func waitForReplicaSet(t *testing.T, rs *skiffappsv1.ReplicaSet, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(rs), rs); err != nil {
			return err
		}
		if err := check(); err != nil {
			return fmt.Errorf("ReplicaSet %s not %s: %w", rs.Name, what, err)
		}
		return nil
	})
}

// TestReadoptOrphanedReplicaSet deletes a Deployment, orphaning its
// ReplicaSet (as `kubectl delete --cascade=orphan` leaves it), and creates
// it again: the new Deployment adopts the ReplicaSet as its new one, by its
// template, and creates none; the pods keep running.
func TestReadoptOrphanedReplicaSet(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "readopt")
	d := newDeployment("readopt", 2, "nginx:1")
	createComplete(t, d)
	rs := mustReplicaSets(t, d)["1"]

	if err := env.Client.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	// What the garbage collector does for an orphaning deletion.
	orphaned := rs.DeepCopy()
	orphaned.OwnerReferences = nil
	if err := env.Client.Patch(ctx, orphaned, client.MergeFrom(&rs)); err != nil {
		t.Fatal(err)
	}

	again := newDeployment("readopt", 2, "nginx:1")
	if err := env.Client.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	waitForRollout(t, again, "the ReplicaSet adopted as the new one", func(rss map[string]skiffappsv1.ReplicaSet) error {
		got := rss["1"]
		if got.UID != rs.UID || len(rss) != 1 {
			return fmt.Errorf("want only %s (uid %s) at revision 1, got %d ReplicaSets (revision 1: %s, uid %s)", rs.Name, rs.UID, len(rss), got.Name, got.UID)
		}
		if got := conditionOf(again, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		if again.Status.UpdatedReplicas != 2 || again.Status.AvailableReplicas != 2 {
			return fmt.Errorf("status %+v", again.Status)
		}
		return nil
	})
	if events, err := eventMessages(ctx, again, "ScalingReplicaSet"); err != nil || len(events) != 0 {
		t.Errorf("ScalingReplicaSet Events %q (%v), want none: nothing needed scaling", events, err)
	}
}
