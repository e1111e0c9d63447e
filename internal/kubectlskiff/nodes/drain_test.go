package nodes_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// podsOn returns "namespace/name" of the active pods of ns on node, sorted.
func podsOn(t *testing.T, ns, node string) []string {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingFields{"spec.nodeName": node}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range list.Items {
		if podutil.IsActive(&list.Items[i]) {
			out = append(out, list.Items[i].Name)
		}
	}
	sort.Strings(out)
	return out
}

// TestDrain drains one of two simulated nodes running a ReplicaSet, a
// DaemonSet and two pods of no controller (one with emptyDir data), with
// the real scheduler, ReplicaSet and DaemonSet controllers. Without flags
// drain cordons the node and refuses, naming every pod it may not delete,
// and deletes nothing; with --ignore-daemonsets --delete-emptydir-data
// --force it deletes the rest, waits until their node agent has stopped
// them, and the node is left with its DaemonSet pod alone while the
// ReplicaSet's pods run again on the other node. Dry runs, first, change
// nothing (dryRuns).
func TestDrain(t *testing.T) {
	ctx := context.Background()
	env.StartManager(t, func(m ctrl.Manager) error {
		return controllers.Setup(m, controllers.Options{Controllers: []string{"replicaset", "daemonset", "scheduler"}})
	})
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: "drain", Count: 2})
	ns := env.Namespace(t, "drain-")
	spec := func(volumes ...corev1.Volume) corev1.PodSpec {
		return corev1.PodSpec{Volumes: volumes, Containers: []corev1.Container{{
			Name: "app", Image: "skiff.dev/test/busybox:v1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
		}}}
	}
	web, agent := map[string]string{"app": "web"}, map[string]string{"app": "agent"}
	objs := []client.Object{
		&skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: web},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: web}, Spec: spec()},
		}},
		&skiffappsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"}, Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: agent},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: agent}, Spec: spec()},
		}},
		&skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lonely"}, Spec: spec()},
		&skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scratch"},
			Spec: spec(corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})},
	}
	for _, o := range objs {
		if p, ok := o.(*skiffcorev1.Pod); ok {
			p.Spec.NodeName = "drain-0"
		}
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
	// Wait until all 8 pods run: 4 web, an agent on each node, lonely and
	// scratch on drain-0.
	var agentPod string
	testenv.Eventually(t, 60*time.Second, func() error {
		var list skiffcorev1.PodList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		running := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
			if strings.HasPrefix(p.Name, "agent-") && p.Spec.NodeName == "drain-0" {
				agentPod = p.Name
			}
		}
		if running != 8 {
			return fmt.Errorf("%d of 8 pods running", running)
		}
		return nil
	})
	before := podsOn(t, ns, "drain-0")
	webBefore := 0
	for _, name := range before {
		if strings.HasPrefix(name, "web-") {
			webBefore++
		}
	}
	if webBefore == 0 {
		t.Fatalf("the scheduler put no web pod on drain-0 (%v): nothing to drain", before)
	}
	p := clitest.New(t, env, ns)
	dryRuns(t, p, ns, agentPod, before, webBefore)

	// Refused: every pod drain may not delete is named, and none goes.
	out, stderr, err := p.Run("drain", "drain-0")
	if out != "node.core.skiff.dev/drain-0 cordoned\n" {
		t.Errorf("refused drain printed %q", out)
	}
	for _, want := range []string{
		"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " + ns + "/" + agentPod,
		"cannot delete Pods with local storage (use --delete-emptydir-data to override): " + ns + "/scratch",
		"cannot delete Pods that declare no controller (use --force to override): " + ns + "/lonely",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("refused drain: err = %v, want one containing %q", err, want)
		}
	}
	if !strings.HasPrefix(stderr, `error: unable to drain node "drain-0" due to error: `) || !strings.HasSuffix(stderr, "There are pending nodes to be drained:\n drain-0\n") {
		t.Errorf("refused drain wrote to stderr:\n%s", stderr)
	}
	if got := podsOn(t, ns, "drain-0"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("a refused drain changed the pods on drain-0: %v, then %v", before, got)
	}

	// Allowed: the rest go, the DaemonSet pod stays.
	out, stderr, err = p.Run("drain", "drain-0", "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s")
	if err != nil {
		t.Fatalf("drain: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	wantOut := regexp.MustCompile(`^node\.core\.skiff\.dev/drain-0 already cordoned\n` +
		`(deleting pod ` + ns + `/(web-\w+|lonely|scratch)\n){` + fmt.Sprint(webBefore+2) + `}` +
		`(pod\.core\.skiff\.dev/(web-\w+|lonely|scratch) deleted\n){` + fmt.Sprint(webBefore+2) + `}` +
		`node\.core\.skiff\.dev/drain-0 drained\n$`)
	if !wantOut.MatchString(out) {
		t.Errorf("drain printed:\n%s\nwant it to match %s", out, wantOut)
	}
	for _, name := range before {
		if name != agentPod && !strings.Contains(out, "pod.core.skiff.dev/"+name+" deleted\n") {
			t.Errorf("drain did not report %s deleted:\n%s", name, out)
		}
	}
	wantErr := "Warning: ignoring DaemonSet-managed Pods: " + ns + "/" + agentPod + "\n" +
		"Warning: deleting Pods with local storage: " + ns + "/scratch\n" +
		"Warning: deleting Pods that declare no controller: " + ns + "/lonely, " + ns + "/scratch\n" +
		"Warning: skiff has no eviction API and no PodDisruptionBudgets: deleting pods instead of evicting them\n"
	if stderr != wantErr {
		t.Errorf("drain warned:\n%s\nwant:\n%s", stderr, wantErr)
	}
	if got := podsOn(t, ns, "drain-0"); len(got) != 1 || got[0] != agentPod {
		t.Errorf("after the drain drain-0 runs %v, want only %s", got, agentPod)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var rs skiffappsv1.ReplicaSet
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &rs); err != nil {
			return err
		}
		if rs.Status.ReadyReplicas != 4 {
			return fmt.Errorf("web has %d ready replicas", rs.Status.ReadyReplicas)
		}
		if got := podsOn(t, ns, "drain-1"); len(got) != 5 {
			return fmt.Errorf("drain-1 runs %v, want 4 web pods and an agent", got)
		}
		return nil
	})
	var node skiffcorev1.Node
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "drain-0"}, &node); err != nil || !node.Spec.Unschedulable {
		t.Errorf("drain-0 is not cordoned after the drain (err %v)", err)
	}
}

// dryRuns drains drain-0 with --dry-run, client and server, refused and
// allowed: each says what a drain would do, by the same rules, and
// changes nothing: the node stays schedulable and every pod stays.
func dryRuns(t *testing.T, p clitest.Plugin, ns, agentPod string, before []string, webBefore int) {
	t.Helper()
	allowed := []string{"--ignore-daemonsets", "--delete-emptydir-data", "--force"}
	deleted := func(mark string) *regexp.Regexp {
		mark = regexp.QuoteMeta(mark)
		return regexp.MustCompile(`^node\.core\.skiff\.dev/drain-0 cordoned ` + mark + `\n` +
			`(deleting pod ` + ns + `/(web-\w+|lonely|scratch) ` + mark + `\n){` + fmt.Sprint(webBefore+2) + `}` +
			`node\.core\.skiff\.dev/drain-0 drained ` + mark + `\n$`)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut *regexp.Regexp
		wantErr string
	}{
		{"client, refused", []string{"--dry-run=client"},
			regexp.MustCompile(`^node\.core\.skiff\.dev/drain-0 cordoned \(dry run\)\n$`),
			"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " + ns + "/" + agentPod},
		{"server, refused", []string{"--dry-run=server", "--ignore-daemonsets", "--force"},
			regexp.MustCompile(`^node\.core\.skiff\.dev/drain-0 cordoned \(server dry run\)\n$`),
			"cannot delete Pods with local storage (use --delete-emptydir-data to override): " + ns + "/scratch"},
		{"client", append([]string{"--dry-run=client"}, allowed...), deleted("(dry run)"), ""},
		{"a bare --dry-run, as client", append([]string{"--dry-run"}, allowed...), deleted("(dry run)"), ""},
		{"server, with a shorter grace period", append([]string{"--dry-run=server", "--grace-period=1"}, allowed...), deleted("(server dry run)"), ""},
		{"a strategy kubectl has not", []string{"--dry-run=maybe"}, regexp.MustCompile(`^$`), `invalid dry-run value (maybe): must be "none", "server", or "client"`},
	} {
		t.Run("dry run, "+tc.name, func(t *testing.T) {
			out, _, err := p.Run(append([]string{"drain", "drain-0"}, tc.args...)...)
			if !tc.wantOut.MatchString(out) {
				t.Errorf("printed:\n%s\nwant it to match %s", out, tc.wantOut)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(out, "/"+agentPod+" ") {
				t.Errorf("a dry run would delete the DaemonSet pod %s:\n%s", agentPod, out)
			}
			var node skiffcorev1.Node
			if err := env.Client.Get(context.Background(), client.ObjectKey{Name: "drain-0"}, &node); err != nil || node.Spec.Unschedulable {
				t.Errorf("a dry run cordoned drain-0 (err %v)", err)
			}
			if got := podsOn(t, ns, "drain-0"); strings.Join(got, ",") != strings.Join(before, ",") {
				t.Errorf("a dry run changed the pods on drain-0: %v, then %v", before, got)
			}
			var pods skiffcorev1.PodList
			if err := env.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			for _, pod := range pods.Items {
				if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && *g == 1 {
					t.Errorf("a dry run set pod %s's terminationGracePeriodSeconds to %d", pod.Name, *pod.Spec.TerminationGracePeriodSeconds)
				}
			}
		})
	}
}

// TestDrainGracePeriodAndTimeout drains a node whose pod never goes (no
// node agent runs there, and a finalizer of the test's holds it): the pod
// is deleted with the shorter --grace-period written to its spec, for its
// node agent, and drain gives up after --timeout, naming it. A pod that
// --pod-selector leaves out is not touched.
func TestDrainGracePeriodAndTimeout(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "drain-timeout-")
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "drain-ghost"}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, node) })
	const hold = "skiff.dev/test-hold"
	for _, name := range []string{"held", "spared"} {
		pod := &skiffcorev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}, Finalizers: []string{hold}},
			Spec: corev1.PodSpec{NodeName: "drain-ghost", TerminationGracePeriodSeconds: ptr.To[int64](30),
				Containers: []corev1.Container{{Name: "app", Image: "skiff.dev/test/busybox:v1"}}},
		}
		if err := env.Client.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = env.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
		})
	}
	p := clitest.New(t, env, ns)

	start := time.Now()
	out, _, err := p.Run("drain", "drain-ghost", "--force", "--grace-period=3", "--timeout=2s", "--pod-selector=pod=held")
	if want := "global timeout reached: 2s: pods still terminating: " + ns + "/held"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want one containing %q", err, want)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("drain took %s with --timeout=2s", elapsed)
	}
	if want := "node.core.skiff.dev/drain-ghost cordoned\ndeleting pod " + ns + "/held\n"; out != want {
		t.Errorf("drain printed %q, want %q", out, want)
	}
	for name, deleted := range map[string]bool{"held": true, "spared": false} {
		var pod skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &pod); err != nil {
			t.Fatal(err)
		}
		if got := pod.DeletionTimestamp != nil; got != deleted {
			t.Errorf("pod %s being deleted = %v, want %v", name, got, deleted)
		}
		want := int64(30)
		if deleted {
			want = 3
		}
		if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != want {
			t.Errorf("pod %s's terminationGracePeriodSeconds = %v, want %d", name, g, want)
		}
	}
}
