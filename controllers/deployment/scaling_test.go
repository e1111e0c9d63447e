package deployment

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/testenv"
)

// waitForRollout waits until check accepts the Deployment (re-read into d)
// and its ReplicaSets by revision.
func waitForRollout(t *testing.T, d *skiffappsv1.Deployment, what string, check func(rss map[string]skiffappsv1.ReplicaSet) error) {
	t.Helper()
	ctx := t.Context()
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		rss, err := replicaSetsOf(ctx, d)
		if err != nil {
			return err
		}
		if err := check(rss); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// createComplete creates d and waits until its first revision is complete.
func createComplete(t *testing.T, d *skiffappsv1.Deployment) {
	t.Helper()
	if err := env.Client.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	waitForRollout(t, d, "revision 1 complete", func(map[string]skiffappsv1.ReplicaSet) error {
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable {
			return fmt.Errorf("Progressing %s", got)
		}
		return nil
	})
}

// mustReplicaSets returns d's ReplicaSets by revision.
func mustReplicaSets(t *testing.T, d *skiffappsv1.Deployment) map[string]skiffappsv1.ReplicaSet {
	t.Helper()
	rss, err := replicaSetsOf(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

// patchDeployment applies change to a copy of d and writes it as a merge
// patch.
func patchDeployment(t *testing.T, d *skiffappsv1.Deployment, change func(*skiffappsv1.Deployment)) {
	t.Helper()
	patched := d.DeepCopy()
	change(patched)
	if err := env.Client.Patch(t.Context(), patched, client.MergeFrom(d)); err != nil {
		t.Fatal(err)
	}
}

// sizes is the shape of a rollout with one old and one new ReplicaSet: their
// spec.replicas and the desired/max annotations both must carry.
type sizes struct {
	old, new         int32
	desired, maxSize int32
}

// check compares the revision 1 (old) and 2 (new) ReplicaSets with s.
func (s sizes) check(rss map[string]skiffappsv1.ReplicaSet) error {
	old, cur := rss["1"], rss["2"]
	if old.Name == "" || cur.Name == "" || len(rss) != 2 {
		return fmt.Errorf("want revisions 1 and 2, got %d ReplicaSets", len(rss))
	}
	got := sizes{old: ptr.Deref(old.Spec.Replicas, 1), new: ptr.Deref(cur.Spec.Replicas, 1), desired: s.desired, maxSize: s.maxSize}
	if got != s {
		return fmt.Errorf("old %d and new %d replicas, want %d and %d", got.old, got.new, s.old, s.new)
	}
	for _, rs := range []skiffappsv1.ReplicaSet{old, cur} {
		desired, maxSize := rs.Annotations[DesiredReplicasAnnotation], rs.Annotations[MaxReplicasAnnotation]
		if desired != strconv.Itoa(int(s.desired)) || maxSize != strconv.Itoa(int(s.maxSize)) {
			return fmt.Errorf("ReplicaSet %s has desired-replicas %q and max-replicas %q, want %d and %d", rs.Name, desired, maxSize, s.desired, s.maxSize)
		}
	}
	return nil
}

// wanted is the number of pods the ReplicaSets want.
func wanted(rss map[string]skiffappsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		n += ptr.Deref(rs.Spec.Replicas, 1)
	}
	return n
}

// TestScaleMidRollout scales a Deployment up, then down, while its rollout
// is stuck on a template whose pods can never be scheduled: the two
// ReplicaSets grow and shrink in proportion to their sizes, as upstream,
// never beyond spec.replicas + maxSurge, and carry the Deployment's new
// desired and max replicas. The ScalingReplicaSet Events use upstream's
// words.
func TestScaleMidRollout(t *testing.T) {
	startCluster(t, "scale")
	d := newDeployment("scale", 10, "nginx:1")
	d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(3)), MaxUnavailable: ptr.To(intstr.FromInt32(2))}
	createComplete(t, d)

	// The new template's pods stay Pending. The rollout surges 3 new pods,
	// removes the 2 old ones maxUnavailable allows, surges 2 more, and
	// stops: 13 pods, 8 of them available.
	patchDeployment(t, d, func(d *skiffappsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		d.Spec.Template.Spec.NodeSelector = map[string]string{"no-such-label": "anywhere"}
	})
	waitForRollout(t, d, "rollout stuck", sizes{old: 8, new: 5, desired: 10, maxSize: 13}.check)

	// Scale up to 20 (at most 23 pods): 10 more, in proportion to 8/13 and
	// 5/13 of 23. Then down to 10 (at most 13): back to 8 old and 5 new.
	// Nothing else may move after either: the rollout is as stuck as
	// before, with the same shape. The new pods are never available, the
	// old ones all are.
	for _, step := range []sizes{
		{old: 14, new: 9, desired: 20, maxSize: 23},
		{old: 8, new: 5, desired: 10, maxSize: 13},
	} {
		patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Spec.Replicas = ptr.To(step.desired) })
		waitForRollout(t, d, fmt.Sprintf("scaled to %d", step.desired), func(rss map[string]skiffappsv1.ReplicaSet) error {
			if n := wanted(rss); n > 23 {
				t.Errorf("the ReplicaSets want %d pods, more than 20 + maxSurge 3, the most this test allows", n)
			}
			if err := step.check(rss); err != nil {
				return err
			}
			// Upstream counts as unavailable every pod the ReplicaSets want
			// that is not available, surge included.
			s, pods := d.Status, step.old+step.new
			if s.ObservedGeneration != d.Generation || s.Replicas != pods || s.UpdatedReplicas != step.new ||
				s.AvailableReplicas != step.old || s.UnavailableReplicas != step.new {
				return fmt.Errorf("status %+v, want %d pods, %d updated, %d available, %d unavailable", s, pods, step.new, step.old, step.new)
			}
			return nil
		})
	}
	// Settled: a few seconds later the shape is the same.
	time.Sleep(3 * time.Second)
	waitForRollout(t, d, "still 8 old and 5 new", sizes{old: 8, new: 5, desired: 10, maxSize: 13}.check)

	// Every step above, in upstream's words.
	rss := mustReplicaSets(t, d)
	old, cur := rss["1"].Name, rss["2"].Name
	waitForEvents(t, d, "ScalingReplicaSet", []string{
		"Scaled up replica set " + old + " to 10",
		"Scaled up replica set " + cur + " to 3",
		"Scaled down replica set " + old + " to 8 from 10",
		"Scaled up replica set " + cur + " to 5 from 3",
		"Scaled up replica set " + old + " to 14 from 8",
		"Scaled up replica set " + cur + " to 9 from 5",
		"Scaled down replica set " + old + " to 8 from 14",
		"Scaled down replica set " + cur + " to 5 from 9",
	})
}

// waitForEvents waits until the deployment controller has reported an
// Event with the reason and each message about d.
func waitForEvents(t *testing.T, d *skiffappsv1.Deployment, reason string, want []string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		got, err := eventMessages(t.Context(), d, reason)
		if err != nil {
			return err
		}
		for _, msg := range want {
			if !slices.Contains(got, msg) {
				return fmt.Errorf("no Event %q among %q", msg, got)
			}
		}
		return nil
	})
}

// eventMessages returns the messages of the Events with the reason about d.
func eventMessages(ctx context.Context, d *skiffappsv1.Deployment, reason string) ([]string, error) {
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(d.Namespace)); err != nil {
		return nil, err
	}
	var msgs []string
	for _, e := range list.Items {
		if e.Regarding.UID == d.UID && e.Reason == reason && e.ReportingController == "deployment-controller" {
			msgs = append(msgs, e.Note)
		}
	}
	return msgs, nil
}
