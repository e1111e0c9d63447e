package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestSamplesApply applies config/samples with kubectl, as `make up` does,
// and lists them through the skiff category.
func TestSamplesApply(t *testing.T) {
	ns := newNamespace(t)
	out, err := env.Kubectl("apply", "-n", ns, "-k", filepath.Join(env.Root, "config", "samples"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	listed, err := env.Kubectl("get", "skiff", "-n", ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	mustContainAll(t, listed,
		"pod.core.skiff.dev/hello", "service.core.skiff.dev/web", "endpointslice.core.skiff.dev/outside-1",
		"replicaset.apps.skiff.dev/sleepers", "deployment.apps.skiff.dev/web", "statefulset.apps.skiff.dev/kv",
		"daemonset.apps.skiff.dev/node-hello", "job.batch.skiff.dev/countdown", "cronjob.batch.skiff.dev/tick")
}

// TestKubectlScale scales every kind with a scale subresource through kubectl.
func TestKubectlScale(t *testing.T) {
	for _, kind := range []string{"replicasets.apps.skiff.dev", "deployments.apps.skiff.dev", "statefulsets.apps.skiff.dev"} {
		t.Run(kind, func(t *testing.T) {
			ns := newNamespace(t)
			o := fromYAML(t, validReplicaSet)
			o.SetKind(map[string]string{
				"replicasets.apps.skiff.dev":  "ReplicaSet",
				"deployments.apps.skiff.dev":  "Deployment",
				"statefulsets.apps.skiff.dev": "StatefulSet",
			}[kind])
			o.SetNamespace(ns)
			if err := env.Client.Create(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if out, err := env.Kubectl("scale", "-n", ns, kind+"/web", "--replicas=5"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := readBack(t, ns, o)
			if replicas, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); replicas != 5 {
				t.Fatalf("spec.replicas = %d after kubectl scale --replicas=5", replicas)
			}
			scale, err := env.Kubectl("get", "-n", ns, kind+"/web", "--subresource=scale", "-o", "jsonpath={.spec.replicas}")
			if err != nil || scale != "5" {
				t.Fatalf("scale subresource says %q: %v", scale, err)
			}
		})
	}
}

// TestKubectlExplain checks that every kind is documented for kubectl explain.
func TestKubectlExplain(t *testing.T) {
	cases := []struct{ apiVersion, resource, want string }{
		{"core.skiff.dev/v1", "pods.spec.containers", "image"},
		{"core.skiff.dev/v1", "nodes.spec", "podCIDR"},
		{"core.skiff.dev/v1", "services.spec", "clusterIP"},
		{"core.skiff.dev/v1", "endpointslices", "addressType"},
		{"apps.skiff.dev/v1", "replicasets.spec", "minReadySeconds"},
		{"apps.skiff.dev/v1", "deployments.spec.strategy.rollingUpdate", "maxSurge"},
		{"apps.skiff.dev/v1", "statefulsets.spec", "volumeClaimTemplates"},
		{"apps.skiff.dev/v1", "daemonsets.spec.updateStrategy", "rollingUpdate"},
		{"batch.skiff.dev/v1", "jobs.spec", "backoffLimitPerIndex"},
		{"batch.skiff.dev/v1", "cronjobs.spec", "concurrencyPolicy"},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			out, err := env.Kubectl("explain", tc.resource, "--api-version", tc.apiVersion)
			if err != nil {
				t.Fatal(err)
			}
			mustContainAll(t, out, tc.want, "DESCRIPTION")
		})
	}
}

// TestPrinterColumns checks that kubectl get shows kubectl's usual columns.
func TestPrinterColumns(t *testing.T) {
	ns := newNamespace(t)
	if out, err := env.Kubectl("apply", "-n", ns, "-k", filepath.Join(env.Root, "config", "samples")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cases := []struct {
		resource string
		wide     bool
		columns  []string
	}{
		{"pods.core.skiff.dev", false, []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}},
		{"pods.core.skiff.dev", true, []string{"IP", "NODE", "NOMINATED NODE"}},
		{"services.core.skiff.dev", false, []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}},
		{"endpointslices.core.skiff.dev", false, []string{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}},
		{"replicasets.apps.skiff.dev", false, []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}},
		{"replicasets.apps.skiff.dev", true, []string{"CONTAINERS", "IMAGES", "SELECTOR"}},
		{"deployments.apps.skiff.dev", false, []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}},
		{"statefulsets.apps.skiff.dev", false, []string{"NAME", "READY", "AGE"}},
		{"daemonsets.apps.skiff.dev", false, []string{"NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"}},
		{"jobs.batch.skiff.dev", false, []string{"NAME", "STATUS", "COMPLETIONS", "AGE"}},
		{"cronjobs.batch.skiff.dev", false, []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s wide=%v", tc.resource, tc.wide), func(t *testing.T) {
			args := []string{"get", tc.resource, "-n", ns}
			if tc.wide {
				args = append(args, "-o", "wide")
			}
			out, err := env.Kubectl(args...)
			if err != nil {
				t.Fatal(err)
			}
			header, _, _ := strings.Cut(out, "\n")
			mustContainAll(t, header, tc.columns...)
		})
	}
}

// TestJobStatusColumn checks that kubectl get shows a Job's state in the
// STATUS column, as upstream's printer does. The column is the first True
// condition's type (the apiserver prints a custom resource column's first
// JSONPath result), so the statuses here are written in the order the Job
// controller writes them: the terminal condition ahead of the
// SuccessCriteriaMet or FailureTarget condition that preceded it.
func TestJobStatusColumn(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name       string
		conditions []any
		want       string
	}{
		{"complete", []any{trueCondition("Complete"), trueCondition("SuccessCriteriaMet")}, "Complete"},
		{"failed", []any{trueCondition("Failed"), trueCondition("FailureTarget")}, "Failed"},
		{"failed after a suspension", []any{trueCondition("Failed"),
			map[string]any{"type": "Suspended", "status": "False"}, trueCondition("FailureTarget")}, "Failed"},
		{"suspended", []any{trueCondition("Suspended")}, "Suspended"},
		// Why the order matters: the first True condition wins.
		{"complete, interim condition first", []any{trueCondition("SuccessCriteriaMet"), trueCondition("Complete")}, "SuccessCriteriaMet"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fromYAML(t, validJob)
			o.SetNamespace(ns)
			o.SetName(fmt.Sprintf("job-%d", i))
			if err := env.Client.Create(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			if err := unstructured.SetNestedSlice(o.Object, tc.conditions, "status", "conditions"); err != nil {
				t.Fatal(err)
			}
			if err := env.Client.Status().Update(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			out, err := env.Kubectl("get", "jobs.batch.skiff.dev", o.GetName(), "-n", ns)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := column(t, out, "STATUS"); got != tc.want {
				t.Fatalf("STATUS = %q, want %q:\n%s", got, tc.want, out)
			}
		})
	}
}

func trueCondition(conditionType string) map[string]any {
	return map[string]any{"type": conditionType, "status": "True"}
}

// column returns the cell under header in kubectl get's one-row table.
func column(t *testing.T, table, header string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a header and one row:\n%s", table)
	}
	headers, cells := strings.Fields(lines[0]), strings.Fields(lines[1])
	for i, h := range headers {
		if h == header && i < len(cells) {
			return cells[i]
		}
	}
	t.Fatalf("no %s column:\n%s", header, table)
	return ""
}

// TestPodNodeNameIsSelectable lists pods by spec.nodeName on the server, as
// the node agent and the scheduler do.
func TestPodNodeNameIsSelectable(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for i, node := range []string{"n1", "n2", "n1"} {
		p := &skiffcorev1.Pod{}
		p.Name, p.Namespace = fmt.Sprintf("p%d", i), ns
		p.Spec.NodeName = node
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "skiff.dev/test/busybox:v1"}}
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var pods skiffcorev1.PodList
	if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingFields{"spec.nodeName": "n1"}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("field selector spec.nodeName=n1 found %d pods, want 2", len(pods.Items))
	}
}
