package deployment

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/controllers/replicaset"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/simulated"
)

// startCluster runs two simulated nodes, the scheduler, the ReplicaSet
// controller and the Deployment controller until the test ends.
func startCluster(t *testing.T, prefix string) {
	t.Helper()
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: prefix, Count: 2,
		Runtime: simulated.Options{RunDuration: time.Second}})
	env.StartManager(t, func(m ctrl.Manager) error {
		if err := scheduler.Setup(m, scheduler.Config{}); err != nil {
			return err
		}
		if err := replicaset.Setup(m); err != nil {
			return err
		}
		return Setup(m)
	})
}

func newDeployment(name string, replicas int32, image string) *skiffappsv1.Deployment {
	labels := map[string]string{"app": name}
	surge, unavailable := intstr.FromInt32(1), intstr.FromInt32(0)
	return &skiffappsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// replicaSetsOf lists the Deployment's ReplicaSets by revision.
func replicaSetsOf(ctx context.Context, d *skiffappsv1.Deployment) (map[string]skiffappsv1.ReplicaSet, error) {
	var list skiffappsv1.ReplicaSetList
	if err := env.Client.List(ctx, &list, client.InNamespace(d.Namespace)); err != nil {
		return nil, err
	}
	byRevision := map[string]skiffappsv1.ReplicaSet{}
	for _, rs := range list.Items {
		if metav1.IsControlledBy(&rs, d) {
			byRevision[rs.Annotations[RevisionAnnotation]] = rs
		}
	}
	return byRevision, nil
}

func conditionOf(d *skiffappsv1.Deployment, t appsv1.DeploymentConditionType) string {
	for _, c := range d.Status.Conditions {
		if c.Type == t {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "none"
}

// TestRollingUpdate creates a Deployment, waits for it to be complete, then
// changes its image and waits for the second revision to replace the first,
// through the real ReplicaSet controller, scheduler and simulated nodes.
func TestRollingUpdate(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "roll")
	d := newDeployment("web", 3, "nginx:1")
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}

	// Revision 1: one ReplicaSet named after the template hash, all
	// available, and the upstream conditions.
	waitForRollout(t, d, "revision 1 complete, named by its hash", func(rss map[string]skiffappsv1.ReplicaSet) error {
		rs, ok := rss["1"]
		if !ok || len(rss) != 1 {
			return fmt.Errorf("want one ReplicaSet at revision 1, got %d", len(rss))
		}
		hash := rs.Labels[PodTemplateHashLabel]
		if rs.Name != "web-"+hash || rs.Spec.Selector.MatchLabels[PodTemplateHashLabel] != hash || rs.Spec.Template.Labels[PodTemplateHashLabel] != hash {
			return fmt.Errorf("ReplicaSet %s is not named and labelled by its hash %q", rs.Name, hash)
		}
		s := d.Status
		if s.AvailableReplicas != 3 || s.UpdatedReplicas != 3 || s.ReadyReplicas != 3 || s.ObservedGeneration != d.Generation {
			return fmt.Errorf("status %+v", s)
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		if got := conditionOf(d, appsv1.DeploymentAvailable); got != "True/"+ReasonMinimumReplicasAvailable {
			return fmt.Errorf("Available %s", got)
		}
		if got := d.Annotations[RevisionAnnotation]; got != "1" {
			return fmt.Errorf("Deployment at revision %q, want 1", got)
		}
		return nil
	})

	// Revision 2: a new image rolls over, never with fewer than 3
	// available pods (maxUnavailable 0).
	patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
	waitForRollout(t, d, "revision 2 replaces revision 1", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas < 3 {
			t.Errorf("only %d pods available during the rollout, want at least 3", d.Status.AvailableReplicas)
		}
		newRS, oldRS := rss["2"], rss["1"]
		if newRS.Name == "" || newRS.Spec.Template.Spec.Containers[0].Image != "nginx:2" {
			return fmt.Errorf("no revision 2 ReplicaSet with the new image yet")
		}
		if ptr.Deref(oldRS.Spec.Replicas, 1) != 0 || ptr.Deref(newRS.Spec.Replicas, 0) != 3 {
			return fmt.Errorf("old %d, new %d replicas", ptr.Deref(oldRS.Spec.Replicas, 1), ptr.Deref(newRS.Spec.Replicas, 0))
		}
		s := d.Status
		if s.UpdatedReplicas != 3 || s.AvailableReplicas != 3 || s.Replicas != 3 {
			return fmt.Errorf("status %+v", s)
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		if got := d.Annotations[RevisionAnnotation]; got != "2" {
			return fmt.Errorf("Deployment at revision %q, want 2", got)
		}
		return nil
	})
	first := mustReplicaSets(t, d)["1"].Name

	// Rollback, as `kubectl rollout undo`: the template of revision 1 comes
	// back, its ReplicaSet is reused and becomes revision 3.
	patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Annotations = map[string]string{RollbackToAnnotation: "0"} })
	waitForRollout(t, d, "revision 1 back as revision 3", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if _, ok := d.Annotations[RollbackToAnnotation]; ok {
			return fmt.Errorf("rollback request still there")
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "nginx:1" {
			return fmt.Errorf("template image %s, want nginx:1", img)
		}
		if len(rss) != 2 || rss["3"].Name != first {
			return fmt.Errorf("want %s reused as revision 3 next to revision 2, got %d ReplicaSets (revision 3: %q)", first, len(rss), rss["3"].Name)
		}
		if d.Status.UpdatedReplicas != 3 || d.Status.AvailableReplicas != 3 || d.Status.Replicas != 3 {
			return fmt.Errorf("status %+v", d.Status)
		}
		if got := d.Annotations[RevisionAnnotation]; got != "3" {
			return fmt.Errorf("Deployment at revision %q, want 3", got)
		}
		if got := rss["3"].Annotations[RevisionHistoryAnnotation]; got != "1" {
			return fmt.Errorf("revision 3 has revision history %q, want 1", got)
		}
		return nil
	})

	waitForEvents(t, d, ReasonRollbackDone, []string{`Rolled back deployment "web" to revision 1`})

	// Requests that cannot be honoured are dropped with upstream's reasons.
	for want, event := range map[string][2]string{
		"3":  {ReasonRollbackTemplateUnchanged, `The rollback revision contains the same template as current deployment "web"`},
		"99": {ReasonRollbackRevisionNotFound, "Unable to find revision to roll back to: revision 99 not found: it may have been cleaned up (see spec.revisionHistoryLimit)"},
	} {
		patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Annotations = map[string]string{RollbackToAnnotation: want} })
		waitForEvents(t, d, event[0], []string{event[1]})
		waitForRollout(t, d, "request dropped, template kept", func(map[string]skiffappsv1.ReplicaSet) error {
			if _, ok := d.Annotations[RollbackToAnnotation]; ok || d.Spec.Template.Spec.Containers[0].Image != "nginx:1" {
				return fmt.Errorf("annotations %v, image %s", d.Annotations, d.Spec.Template.Spec.Containers[0].Image)
			}
			return nil
		})
	}

	// revisionHistoryLimit 0: the empty revision 2 goes.
	patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptr.To[int32](0) })
	waitForRollout(t, d, "revision 2 deleted", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if _, ok := rss["2"]; ok || len(rss) != 1 {
			return fmt.Errorf("want only revision 3 left, got %d ReplicaSets", len(rss))
		}
		return nil
	})
}

// TestProgressDeadline creates a Deployment whose pods can never be
// scheduled: once progressDeadlineSeconds pass without progress, Progressing
// turns False with ProgressDeadlineExceeded, as upstream.
func TestProgressDeadline(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "stuck")
	d := newDeployment("stuck", 2, "nginx:1")
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	d.Spec.Template.Spec.NodeSelector = map[string]string{"no-such-label": "anywhere"}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "False/"+ReasonProgressDeadlineExceeded {
			return fmt.Errorf("Progressing %s", got)
		}
		if got := conditionOf(d, appsv1.DeploymentAvailable); got != "False/"+ReasonMinimumReplicasUnavailable {
			return fmt.Errorf("Available %s", got)
		}
		if d.Status.UnavailableReplicas != 2 {
			return fmt.Errorf("unavailableReplicas %d, want 2", d.Status.UnavailableReplicas)
		}
		return nil
	})
}

// TestPauseAndRecreate pauses a Recreate Deployment, changes its image
// (nothing rolls, Progressing says DeploymentPaused), then resumes it: the
// old ReplicaSet goes to zero and the new one takes every replica.
func TestPauseAndRecreate(t *testing.T) {
	startCluster(t, "recreate")
	d := newDeployment("recreate", 2, "nginx:1")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	createComplete(t, d)

	patchDeployment(t, d, func(d *skiffappsv1.Deployment) {
		d.Spec.Paused = true
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	})
	waitForRollout(t, d, "paused", func(map[string]skiffappsv1.ReplicaSet) error {
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "Unknown/"+ReasonDeploymentPaused {
			return fmt.Errorf("Progressing %s", got)
		}
		return nil
	})
	if rss := mustReplicaSets(t, d); len(rss) != 1 || d.Status.AvailableReplicas != 2 {
		t.Fatalf("a paused Deployment rolled: %d ReplicaSets, %d available", len(rss), d.Status.AvailableReplicas)
	}

	patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Spec.Paused = false })
	waitForRollout(t, d, "revision 2 complete", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if ptr.Deref(rss["1"].Spec.Replicas, 1) != 0 || ptr.Deref(rss["2"].Spec.Replicas, 0) != 2 {
			return fmt.Errorf("old %d, new %d replicas", ptr.Deref(rss["1"].Spec.Replicas, 1), ptr.Deref(rss["2"].Spec.Replicas, 0))
		}
		if d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 || d.Status.Replicas != 2 {
			return fmt.Errorf("status %+v", d.Status)
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		return nil
	})
}
