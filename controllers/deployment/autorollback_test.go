package deployment

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/testenv"
)

func TestAutoRollbackTarget(t *testing.T) {
	available := func(rs *skiffappsv1.ReplicaSet) *skiffappsv1.ReplicaSet {
		rs.Annotations[FullyAvailableAnnotation] = "true"
		return rs
	}
	cases := []struct {
		name string
		old  []*skiffappsv1.ReplicaSet
		want string
	}{
		{"none fully available", []*skiffappsv1.ReplicaSet{revRS(1, 0, 0), revRS(2, 0, 0)}, ""},
		{"the highest fully available revision", []*skiffappsv1.ReplicaSet{available(revRS(1, 0, 0)), available(revRS(3, 0, 0)), revRS(4, 0, 0)}, "rev3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ""
			if rs := autoRollbackTarget(c.old); rs != nil {
				got = rs.Name
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestJustTimedOut(t *testing.T) {
	with := func(reason string) *appsv1.DeploymentStatus {
		return &appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: reason}}}
	}
	if !justTimedOut(with(ReasonReplicaSetUpdated), with(ReasonProgressDeadlineExceeded)) {
		t.Error("a new timeout was not seen")
	}
	if justTimedOut(with(ReasonProgressDeadlineExceeded), with(ReasonProgressDeadlineExceeded)) {
		t.Error("an old timeout counted again: it would roll back on every pass")
	}
}

// TestAutoRollback rolls out a revision whose pods can never be scheduled,
// on a Deployment that opted in to automatic rollback: once the progress
// deadline passes, it goes back to revision 1, records why in the
// AutoRolledBack condition, and completes there.
func TestAutoRollback(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "auto")
	d := newDeployment("auto", 2, "nginx:1")
	d.Annotations = map[string]string{AutoRollbackAnnotation: "true"}
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		rss, err := replicaSetsOf(ctx, d)
		if err != nil {
			return err
		}
		if rss["1"].Annotations[FullyAvailableAnnotation] != "true" {
			return fmt.Errorf("revision 1 not marked fully available yet")
		}
		return nil
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	patched := d.DeepCopy()
	patched.Spec.Template.Spec.NodeSelector = map[string]string{"no-such-label": "anywhere"}
	if err := env.Client.Patch(ctx, patched, client.MergeFrom(d)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		if len(d.Spec.Template.Spec.NodeSelector) != 0 {
			return fmt.Errorf("template still has the unschedulable nodeSelector")
		}
		c := getCondition(&d.Status, ConditionAutoRolledBack)
		if c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonProgressDeadlineExceeded {
			return fmt.Errorf("AutoRolledBack condition %+v", c)
		}
		rss, err := replicaSetsOf(ctx, d)
		if err != nil {
			return err
		}
		if _, ok := rss["3"]; !ok {
			return fmt.Errorf("revision 1 not reused as revision 3 yet")
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		if d.Status.Replicas != 2 || d.Status.AvailableReplicas != 2 || d.Status.UpdatedReplicas != 2 {
			return fmt.Errorf("status %+v", d.Status)
		}
		return nil
	})
}
