package rollout_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/controllers/daemonset"
	"skiff.dev/skiff/controllers/deployment"
	"skiff.dev/skiff/controllers/replicaset"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/controllers/statefulset"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
	"skiff.dev/skiff/internal/testenv"
)

// startCluster runs two simulated nodes, the scheduler and the workload
// controllers until the test ends, and returns the plugin aimed at a
// namespace of the test's own.
func startCluster(t *testing.T) clitest.Plugin {
	t.Helper()
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: "rollout", Count: 2})
	env.StartManager(t, func(m ctrl.Manager) error {
		for _, setup := range []func(ctrl.Manager) error{
			func(m ctrl.Manager) error { return scheduler.Setup(m, scheduler.Config{}) },
			replicaset.Setup, deployment.Setup, statefulset.Setup, daemonset.Setup,
		} {
			if err := setup(m); err != nil {
				return err
			}
		}
		return nil
	})
	return clitest.New(t, env, env.Namespace(t, "rollout-"))
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func newDeployment(ns, name string, replicas int32) *skiffappsv1.Deployment {
	return &skiffappsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Annotations: map[string]string{"kubernetes.io/change-cause": "first release"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "skiff.dev/test/echo:v1"),
		},
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func get[T client.Object](t *testing.T, obj T) T {
	t.Helper()
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func mustContain(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

// TestDeploymentRollout walks one Deployment through the rollout commands
// against the real controllers: status waits for the first rollout,
// restart rolls out a new ReplicaSet, history lists both revisions with
// their change causes, undo brings the first template back, and pause and
// resume set spec.paused.
func TestDeploymentRollout(t *testing.T) {
	c := startCluster(t)
	d := newDeployment(c.Namespace, "web", 2)
	create(t, d)

	out := c.MustRun(t, "rollout", "status", "deployment/web", "--timeout=60s")
	mustContain(t, out, `deployment "web" successfully rolled out`)

	// restart: a new template, so a second ReplicaSet (revision 2). The
	// controller copies the Deployment's annotations to the new ReplicaSet
	// only, so the change cause written after the restart is revision 2's.
	out = c.MustRun(t, "rollout", "restart", "deploy", "web")
	patchAnnotation(t, d, "kubernetes.io/change-cause", "restart for a new config")
	if out != "deployment.apps.skiff.dev/web restarted\n" {
		t.Errorf("restart printed %q", out)
	}
	if get(t, d).Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Errorf("restart did not stamp the template: %v", d.Spec.Template.Annotations)
	}
	out = c.MustRun(t, "rollout", "status", "deploy/web", "--timeout=60s")
	mustContain(t, out, `deployment "web" successfully rolled out`)

	testenv.Eventually(t, 30*time.Second, func() error {
		out := c.MustRun(t, "rollout", "history", "deployment/web")
		if want := "deployment.apps.skiff.dev/web \nREVISION  CHANGE-CAUSE\n1         first release\n2         restart for a new config\n\n"; out != want {
			return fmt.Errorf("history:\n%q\nwant\n%q", out, want)
		}
		return nil
	})
	out = c.MustRun(t, "rollout", "history", "deployment/web", "--revision=2")
	mustContain(t, out, "deployment.apps.skiff.dev/web with revision #2\nPod Template:\n", "kubectl.kubernetes.io/restartedAt: ", "Image:         skiff.dev/test/echo:v1", "pod-template-hash=")
	if _, _, err := c.Run("rollout", "history", "deployment/web", "--revision=9"); err == nil {
		t.Error("history --revision=9 succeeded; there is no revision 9")
	}

	// undo: back to revision 1's template, which comes back as revision 3.
	out = c.MustRun(t, "rollout", "undo", "deployment/web")
	if out != "deployment.apps.skiff.dev/web rolled back\n" {
		t.Errorf("undo printed %q", out)
	}
	get(t, d)
	if _, ok := d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"]; ok {
		t.Errorf("undo left revision 2's template: %v", d.Spec.Template.Annotations)
	}
	if _, ok := d.Spec.Template.Labels["pod-template-hash"]; ok {
		t.Errorf("undo copied the pod-template-hash label into the Deployment: %v", d.Spec.Template.Labels)
	}
	if got := d.Annotations["kubernetes.io/change-cause"]; got != "first release" {
		t.Errorf("undo brought back change-cause %q, want revision 1's", got)
	}
	c.MustRun(t, "rollout", "status", "deployment/web", "--timeout=60s")
	testenv.Eventually(t, 30*time.Second, func() error {
		out, _, err := c.Run("rollout", "history", "deployment/web")
		if err != nil || !strings.Contains(out, "\n2         restart for a new config\n3         first release\n") {
			return fmt.Errorf("history after undo: %v\n%s", err, out)
		}
		return nil
	})
	out = c.MustRun(t, "rollout", "undo", "deployment/web", "--to-revision=3")
	if out != "deployment.apps.skiff.dev/web skipped rollback (current template already matches revision 3)\n" {
		t.Errorf("undo to the current revision printed %q", out)
	}

	// pause and resume.
	if out := c.MustRun(t, "rollout", "pause", "deployment/web"); out != "deployment.apps.skiff.dev/web paused\n" {
		t.Errorf("pause printed %q", out)
	}
	if !get(t, d).Spec.Paused {
		t.Error("pause did not set spec.paused")
	}
	if out := c.MustRun(t, "rollout", "pause", "deployment/web"); out != "deployment.apps.skiff.dev/web already paused\n" {
		t.Errorf("second pause printed %q", out)
	}
	for _, cmd := range [][]string{{"undo", "deployment/web"}, {"restart", "deployment/web"}} {
		if _, _, err := c.Run(append([]string{"rollout"}, cmd...)...); err == nil || !strings.Contains(err.Error(), "resume") {
			t.Errorf("rollout %v of a paused deployment: err = %v, want one saying to resume first", cmd, err)
		}
	}
	if out := c.MustRun(t, "rollout", "resume", "deployment/web"); out != "deployment.apps.skiff.dev/web resumed\n" {
		t.Errorf("resume printed %q", out)
	}
	if get(t, d).Spec.Paused {
		t.Error("resume did not clear spec.paused")
	}
}

// TestDeploymentStatusFailures shows how status ends when a rollout cannot
// finish: --watch=false prints once and succeeds, --timeout gives up with
// kubectl's error, and a passed progress deadline is an error.
func TestDeploymentStatusFailures(t *testing.T) {
	c := startCluster(t)
	d := newDeployment(c.Namespace, "stuck", 1)
	// No node has this label: the pod stays unscheduled.
	d.Spec.Template.Spec.NodeSelector = map[string]string{"skiff-test/none": "true"}
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	create(t, d)

	testenv.Eventually(t, 30*time.Second, func() error {
		out, _, err := c.Run("rollout", "status", "deployment/stuck", "--watch=false")
		if err != nil || !strings.Contains(out, `Waiting for deployment "stuck" rollout to finish: 0 of 1 updated replicas are available...`) {
			return fmt.Errorf("status --watch=false: %v: %q", err, out)
		}
		return nil
	})
	_, _, err := c.Run("rollout", "status", "deployment/stuck", "--timeout=1s")
	if err == nil || err.Error() != "timed out waiting for the condition" {
		t.Errorf("status --timeout=1s: err = %v", err)
	}
	_, _, err = c.Run("rollout", "status", "deployment/stuck", "--timeout=60s")
	if err == nil || err.Error() != `deployment "stuck" exceeded its progress deadline` {
		t.Errorf("status past the progress deadline: err = %v", err)
	}
	if _, _, err := c.Run("rollout", "status", "deployment/missing", "--watch=false"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("status of a missing deployment: err = %v", err)
	}
}

// TestStatefulSetAndDaemonSetUndo rolls a StatefulSet and a DaemonSet to
// a second image and back with undo, through their ControllerRevisions,
// and checks that they cannot be paused.
func TestStatefulSetAndDaemonSetUndo(t *testing.T) {
	c := startCluster(t)
	sel := func(app string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	}
	sts := &skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: c.Namespace},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), Selector: sel("db"), Template: podTemplate("db", "skiff.dev/test/echo:v1")}}
	ds := &skiffappsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: c.Namespace},
		Spec: appsv1.DaemonSetSpec{Selector: sel("agent"), Template: podTemplate("agent", "skiff.dev/test/echo:v1")}}
	create(t, sts)
	create(t, ds)

	for _, tc := range []struct {
		arg, name string
		obj       client.Object
		template  func() *corev1.PodTemplateSpec
		done      string
	}{
		{"sts/db", "statefulset.apps.skiff.dev/db", sts, func() *corev1.PodTemplateSpec { return &sts.Spec.Template }, "statefulset rolling update complete 1 pods at revision"},
		{"ds/agent", "daemonset.apps.skiff.dev/agent", ds, func() *corev1.PodTemplateSpec { return &ds.Spec.Template }, `daemon set "agent" successfully rolled out`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			mustContain(t, c.MustRun(t, "rollout", "status", tc.arg, "--timeout=60s"), tc.done)
			patch := `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"skiff.dev/test/busybox:v1"}]}}}}`
			if err := env.Client.Patch(context.Background(), tc.obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				t.Fatal(err)
			}
			mustContain(t, c.MustRun(t, "rollout", "status", tc.arg, "--timeout=60s"), tc.done)
			if out := c.MustRun(t, "rollout", "history", tc.arg); out != tc.name+" \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n" {
				t.Errorf("history printed %q", out)
			}
			if out := c.MustRun(t, "rollout", "undo", tc.arg, "--to-revision=1"); out != tc.name+" rolled back\n" {
				t.Errorf("undo printed %q", out)
			}
			get(t, tc.obj)
			if img := tc.template().Spec.Containers[0].Image; img != "skiff.dev/test/echo:v1" {
				t.Errorf("after undo the image is %s, want revision 1's", img)
			}
			mustContain(t, c.MustRun(t, "rollout", "status", tc.arg, "--timeout=60s"), tc.done)
			if _, _, err := c.Run("rollout", "pause", tc.arg); err == nil || !strings.Contains(err.Error(), "pausing is not supported") {
				t.Errorf("pause: err = %v, want not supported", err)
			}
			if out := c.MustRun(t, "rollout", "restart", tc.arg); out != tc.name+" restarted\n" {
				t.Errorf("restart printed %q", out)
			}
		})
	}
}

func patchAnnotation(t *testing.T, obj client.Object, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := env.Client.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}
