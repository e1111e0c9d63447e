package deployment

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

func TestSplitReplicaSets(t *testing.T) {
	template := func(image string, hash string) corev1.PodTemplateSpec {
		labels := map[string]string{"app": "web"}
		if hash != "" {
			labels[PodTemplateHashLabel] = hash
		}
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
		}
	}
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	rs := func(name string, age int, image, hash string, deleting bool) *skiffappsv1.ReplicaSet {
		r := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(-age) * time.Minute))}}
		r.Spec.Template = template(image, hash)
		if deleting {
			r.DeletionTimestamp = &t0
		}
		return r
	}
	want := template("nginx:2", "")
	cases := []struct {
		name    string
		rss     []*skiffappsv1.ReplicaSet
		wantNew string
		wantOld []string
	}{
		{"the template is found whatever its hash label",
			[]*skiffappsv1.ReplicaSet{rs("a", 2, "nginx:1", "h1", false), rs("b", 1, "nginx:2", "h-from-another-collision-count", false)},
			"b", []string{"a"}},
		{"of two with the template, the oldest is new",
			[]*skiffappsv1.ReplicaSet{rs("young", 1, "nginx:2", "h2", false), rs("old", 3, "nginx:2", "h3", false), rs("other", 2, "nginx:1", "h1", false)},
			"old", []string{"other", "young"}},
		{"none with the template: all old, oldest first",
			[]*skiffappsv1.ReplicaSet{rs("b", 1, "nginx:1", "h1", false), rs("a", 2, "nginx:0", "h0", false)},
			"", []string{"a", "b"}},
		{"ones being deleted are left out",
			[]*skiffappsv1.ReplicaSet{rs("gone", 2, "nginx:2", "h2", true), rs("a", 1, "nginx:1", "h1", false)},
			"", []string{"a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			newRS, old := splitReplicaSets(c.rss, &want)
			gotNew := ""
			if newRS != nil {
				gotNew = newRS.Name
			}
			var gotOld []string
			for _, rs := range old {
				gotOld = append(gotOld, rs.Name)
			}
			if gotNew != c.wantNew || fmt.Sprint(gotOld) != fmt.Sprint(c.wantOld) {
				t.Errorf("new %q old %v, want new %q old %v", gotNew, gotOld, c.wantNew, c.wantOld)
			}
		})
	}
}

func TestScalingMessage(t *testing.T) {
	cases := []struct {
		from, to int32
		created  bool
		want     string
	}{
		{0, 3, true, "Scaled up replica set web-1 to 3"},
		{0, 3, false, "Scaled up replica set web-1 to 3 from 0"},
		{3, 5, false, "Scaled up replica set web-1 to 5 from 3"},
		{5, 2, false, "Scaled down replica set web-1 to 2 from 5"},
	}
	for _, c := range cases {
		if got := scalingMessage("web-1", c.from, c.to, c.created); got != c.want {
			t.Errorf("scalingMessage(%d, %d, %v) = %q, want %q", c.from, c.to, c.created, got, c.want)
		}
	}
}

// TestHashCollision takes the name the Deployment's new ReplicaSet would
// get with a ReplicaSet of another template (which the Deployment does not
// select): the controller raises status.collisionCount, as upstream, and
// rolls out under the next hash, leaving the other ReplicaSet alone.
func TestHashCollision(t *testing.T) {
	ctx := t.Context()
	startCluster(t, "collide")
	d := newDeployment("collide", 1, "nginx:1")
	d.Spec.Paused = true // no ReplicaSet until the name is taken
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
		t.Fatal(err)
	}
	squatter := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Name:      "collide-" + templateHash(&d.Spec.Template, d.Status.CollisionCount),
		Namespace: d.Namespace,
		Labels:    map[string]string{"app": "squatter"},
	}}
	squatter.Spec.Replicas = ptr.To[int32](0)
	squatter.Spec.Selector = &metav1.LabelSelector{MatchLabels: squatter.Labels}
	squatter.Spec.Template.Labels = squatter.Labels
	squatter.Spec.Template.Spec.Containers = []corev1.Container{{Name: "app", Image: "busybox"}}
	if err := env.Client.Create(ctx, squatter); err != nil {
		t.Fatal(err)
	}

	patchDeployment(t, d, func(d *skiffappsv1.Deployment) { d.Spec.Paused = false })
	waitForRollout(t, d, "rolled out under the next hash", func(rss map[string]skiffappsv1.ReplicaSet) error {
		if got := ptr.Deref(d.Status.CollisionCount, 0); got != 1 {
			return fmt.Errorf("collisionCount %d, want 1", got)
		}
		rs := rss["1"]
		if want := "collide-" + templateHash(&d.Spec.Template, ptr.To[int32](1)); rs.Name != want || len(rss) != 1 {
			return fmt.Errorf("want one ReplicaSet %s, got %d (revision 1: %q)", want, len(rss), rs.Name)
		}
		if got := conditionOf(d, appsv1.DeploymentProgressing); got != "True/"+ReasonNewReplicaSetAvailable || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("Progressing %s, %d available", got, d.Status.AvailableReplicas)
		}
		return nil
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(squatter), squatter); err != nil {
		t.Fatal(err)
	}
	if len(squatter.OwnerReferences) != 0 || squatter.Spec.Template.Spec.Containers[0].Image != "busybox" || *squatter.Spec.Replicas != 0 {
		t.Errorf("the colliding ReplicaSet was touched: owners %v, image %s, %d replicas",
			squatter.OwnerReferences, squatter.Spec.Template.Spec.Containers[0].Image, *squatter.Spec.Replicas)
	}
}

// TestNewReplicaSetFollowsDeployment changes what a Deployment does not
// hash, minReadySeconds and an annotation: no new ReplicaSet, but the
// existing one takes both, as upstream.
func TestNewReplicaSetFollowsDeployment(t *testing.T) {
	startCluster(t, "follow")
	d := newDeployment("follow", 1, "nginx:1")
	createComplete(t, d)
	first := mustReplicaSets(t, d)["1"].Name

	patchDeployment(t, d, func(d *skiffappsv1.Deployment) {
		d.Spec.MinReadySeconds = 2
		d.Annotations = map[string]string{"team": "blue"}
	})
	waitForRollout(t, d, "the ReplicaSet follows", func(rss map[string]skiffappsv1.ReplicaSet) error {
		rs := rss["1"]
		if rs.Name != first || len(rss) != 1 {
			return fmt.Errorf("want only %s at revision 1, got %d ReplicaSets (revision 1: %q)", first, len(rss), rs.Name)
		}
		if rs.Spec.MinReadySeconds != 2 || rs.Annotations["team"] != "blue" {
			return fmt.Errorf("ReplicaSet has minReadySeconds %d and team %q, want 2 and blue", rs.Spec.MinReadySeconds, rs.Annotations["team"])
		}
		if d.Status.ObservedGeneration != d.Generation || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("status %+v", d.Status)
		}
		return nil
	})

	// Settled: the controller writes nothing more, neither the Deployment
	// nor its ReplicaSet (a write loop would show as a new
	// resourceVersion).
	waitForRollout(t, d, "quiet", func(rss map[string]skiffappsv1.ReplicaSet) error {
		before, rsBefore := d.ResourceVersion, rss["1"].ResourceVersion
		time.Sleep(2 * time.Second)
		after := d.DeepCopy()
		if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(d), after); err != nil {
			return err
		}
		if rss = mustReplicaSets(t, d); after.ResourceVersion != before || rss["1"].ResourceVersion != rsBefore {
			return fmt.Errorf("still written: Deployment %s -> %s, ReplicaSet %s -> %s", before, after.ResourceVersion, rsBefore, rss["1"].ResourceVersion)
		}
		return nil
	})
}

// TestReplicaSetCreateError gives a Deployment a name so long that the name
// of its new ReplicaSet, <name>-<hash>, is refused: Progressing turns False
// with ReplicaSetCreateError and the apiserver's reason, as upstream. (The
// Warning Event cannot be checked here: its own name, <name>.<time>, is
// refused too.)
func TestReplicaSetCreateError(t *testing.T) {
	startCluster(t, "refused")
	d := newDeployment(strings.Repeat("x", 253), 1, "nginx:1")
	d.Spec.Selector.MatchLabels = map[string]string{"app": "refused"}
	d.Spec.Template.Labels = map[string]string{"app": "refused"}
	if err := env.Client.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	// Stop its retries before the next test's manager would take them up.
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), d) })
	waitForRollout(t, d, "creation refused", func(rss map[string]skiffappsv1.ReplicaSet) error {
		c := getCondition(&d.Status, appsv1.DeploymentProgressing)
		if c == nil || c.Status != corev1.ConditionFalse || c.Reason != ReasonReplicaSetCreateError {
			return fmt.Errorf("Progressing %+v, want False/%s", c, ReasonReplicaSetCreateError)
		}
		wantPrefix := fmt.Sprintf("Failed to create new replica set %q: ", d.Name+"-"+templateHash(&d.Spec.Template, nil))
		if !strings.HasPrefix(c.Message, wantPrefix) || !strings.Contains(c.Message, "metadata.name") {
			return fmt.Errorf("message %q, want %q and the apiserver's refusal of metadata.name", c.Message, wantPrefix)
		}
		if len(rss) != 0 {
			return fmt.Errorf("%d ReplicaSets exist", len(rss))
		}
		return nil
	})
}
