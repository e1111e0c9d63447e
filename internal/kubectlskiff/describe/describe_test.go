package describe_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/controllers"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
	"skiff.dev/skiff/internal/testenv"
)

// podSpec is one container of the test image requesting cpu.
func podSpec(cpu string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name: "app", Image: "skiff.dev/test/busybox:v1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}},
	}}}
}

// lines checks that out has each want line, matched as a regular
// expression against whole lines (kubectl aligns columns with spaces).
func lines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(`(?m)^` + w + `$`).MatchString(out) {
			t.Errorf("%s lacks a line matching %q:\n%s", what, w, out)
		}
	}
}

// TestPendingPodAndNode runs the real scheduler and one simulated node
// with 1 CPU: a pod asking for 2 is described as kubectl describes a pod
// the scheduler cannot place (Pending, no node, PodScheduled False, and the
// scheduler's FailedScheduling Event with its reason), one asking for 500m
// as a running pod on the node, and the node with its lease, its one
// non-terminated pod and the CPU it has allocated.
func TestPendingPodAndNode(t *testing.T) {
	ctx := context.Background()
	env.StartManager(t, func(m ctrl.Manager) error {
		return controllers.Setup(m, controllers.Options{Controllers: []string{"scheduler"}})
	})
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: "describe", Count: 1, CPU: "1"})
	// The node registers tainted not-ready; the pods come once it is not,
	// so that the scheduler's reason is the CPU.
	testenv.Eventually(t, 60*time.Second, func() error {
		var n skiffcorev1.Node
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "describe-0"}, &n); err != nil {
			return err
		}
		if len(n.Spec.Taints) > 0 {
			return fmt.Errorf("node describe-0 still has taints %v", n.Spec.Taints)
		}
		return nil
	})
	ns := env.Namespace(t, "describe-pod-")
	for name, cpu := range map[string]string{"big": "2", "small": "500m"} {
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: podSpec(cpu)}
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p := clitest.New(t, env, ns)

	var out string
	testenv.Eventually(t, 60*time.Second, func() error {
		out = p.MustRun(t, "describe", "pod", "big")
		if !strings.Contains(out, "1 Insufficient cpu") {
			return fmt.Errorf("no FailedScheduling event for the CPU yet:\n%s", out)
		}
		return nil
	})
	lines(t, "describe pod big", out,
		`Name:\s+big`,
		`Namespace:\s+`+ns,
		`Node:\s+<none>`,
		`Status:\s+Pending`,
		`\s+cpu:\s+2`,
		`\s+PodScheduled\s+False\s*`,
		`\s+Warning\s+FailedScheduling\s+\S+.*\s+default-scheduler\s+0/1 nodes are available: 1 Insufficient cpu\..*`,
	)

	testenv.Eventually(t, 60*time.Second, func() error {
		var small skiffcorev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "small"}, &small); err != nil {
			return err
		}
		if small.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("pod small is %s", small.Status.Phase)
		}
		return nil
	})
	out = p.MustRun(t, "describe", "pod/small")
	lines(t, "describe pod/small", out,
		`Name:\s+small`,
		`Node:\s+describe-0/192\.0\.2\.1`,
		`Status:\s+Running`,
		`\s+PodScheduled\s+True\s*`,
		`\s+Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned `+ns+`/small to describe-0`,
	)

	out = p.MustRun(t, "describe", "node", "describe-0")
	lines(t, "describe node describe-0", out,
		`Name:\s+describe-0`,
		`Lease:`,
		`\s+HolderIdentity:\s+describe-0`,
		`\s+Ready\s+True\s+.*KubeletReady.*`,
		`\s+InternalIP:\s+192\.0\.2\.1`,
		`Non-terminated Pods:\s+\(1 in total\)`,
		`\s+`+ns+`\s+small\s+500m \(50%\)\s+0 \(0%\)\s+0 \(0%\)\s+0 \(0%\)\s+\S+`,
		`\s+cpu\s+500m \(50%\)\s+0 \(0%\)`,
	)
}

// TestWorkloads describes a Deployment that the real deployment,
// ReplicaSet and scheduler controllers run on a simulated node: its
// replicas, its new ReplicaSet and the scaling Event; the ReplicaSet's pod
// counts; and the pods by selector, one description each.
func TestWorkloads(t *testing.T) {
	ctx := context.Background()
	env.StartManager(t, func(m ctrl.Manager) error {
		return controllers.Setup(m, controllers.Options{Controllers: []string{"deployment", "replicaset", "scheduler"}})
	})
	env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: "workloads", Count: 1})
	ns := env.Namespace(t, "describe-deploy-")
	labels := map[string]string{"app": "web"}
	d := &skiffappsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec("100m")},
		},
	}
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	p := clitest.New(t, env, ns)

	var out string
	testenv.Eventually(t, 60*time.Second, func() error {
		out = p.MustRun(t, "describe", "deploy/web")
		if !regexp.MustCompile(`Replicas:\s+2 desired \| 2 updated \| 2 total \| 2 available`).MatchString(out) {
			return fmt.Errorf("not all available yet:\n%s", out)
		}
		return nil
	})
	lines(t, "describe deploy/web", out,
		`Name:\s+web`,
		`Selector:\s+app=web`,
		`StrategyType:\s+RollingUpdate`,
		`NewReplicaSet:\s+web-\w+ \(2/2 replicas created\)`,
		`\s+Normal\s+ScalingReplicaSet\s+.*Scaled up replica set web-\w+ (from 0 )?to 2`,
	)
	rsName := regexp.MustCompile(`NewReplicaSet:\s+(web-\w+)`).FindStringSubmatch(out)[1]

	out = p.MustRun(t, "describe", "rs", rsName)
	lines(t, "describe rs", out,
		`Name:\s+`+rsName,
		`Controlled By:\s+Deployment/web`,
		`Replicas:\s+2 current / 2 desired`,
		`Pods Status:\s+2 Running / 0 Waiting / 0 Succeeded / 0 Failed`,
		`\s+Normal\s+SuccessfulCreate\s+.*Created pod: web-\w+-\w+`,
	)

	out = p.MustRun(t, "describe", "pods", "-l", "app=web")
	if n := strings.Count(out, "\nControlled By:  ReplicaSet/"+rsName+"\n"); n != 2 {
		t.Errorf("describe pods -l app=web described %d pods of %s, want 2:\n%s", n, rsName, out)
	}
	if !strings.Contains(out, "\n\n\nName:") {
		t.Errorf("the descriptions are not separated by blank lines:\n%s", out)
	}
	// A name prefix matches every pod whose name starts with it.
	if out := p.MustRun(t, "describe", "pods", rsName); strings.Count(out, "Controlled By:  ReplicaSet/"+rsName) != 2 {
		t.Errorf("describe pods %s (a prefix) did not describe both pods:\n%s", rsName, out)
	}
}

// TestKinds describes one object of each other kind, made directly with no
// controller running, and checks the lines kubectl's describer for the
// upstream kind writes from its spec and status: a Service's endpoints
// come from skiff's EndpointSlices.
func TestKinds(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "describe-kinds-")
	labels := map[string]string{"app": "db"}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec("100m")}
	jobTemplate := *template.DeepCopy()
	jobTemplate.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	objs := []client.Object{
		&skiffcorev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Spec: corev1.ServiceSpec{
			Selector: labels, Ports: []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}},
		}},
		&skiffcorev1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "db-abc", Labels: map[string]string{skiffcorev1.LabelServiceName: "db"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("sql"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}},
		},
		&skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](3), Selector: selector, Template: template, ServiceName: "db",
		}},
		&skiffappsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"}, Spec: appsv1.DaemonSetSpec{
			Selector: selector, Template: template,
		}},
		&skiffbatchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backup"}, Spec: batchv1.JobSpec{
			Completions: ptr.To[int32](2), Parallelism: ptr.To[int32](1), Template: jobTemplate,
		}},
		&skiffbatchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate}},
		}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
	p := clitest.New(t, env, ns)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"svc", "db"}, []string{`Name:\s+db`, `Selector:\s+app=db`, `Port:\s+sql\s+5432/TCP`, `Endpoints:\s+10\.244\.1\.7:5432`}},
		{[]string{"statefulset.apps/db"}, []string{`Name:\s+db`, `Replicas:\s+3 desired \| 0 total`, `Pods Status:\s+0 Running / 0 Waiting / 0 Succeeded / 0 Failed`, `Pod Template:`}},
		{[]string{"ds", "agent"}, []string{`Name:\s+agent`, `Desired Number of Nodes Scheduled: 0`, `\s+Image:\s+skiff\.dev/test/busybox:v1`}},
		{[]string{"jobs/backup"}, []string{`Name:\s+backup`, `Parallelism:\s+1`, `Completions:\s+2`, `Pods Statuses:\s+0 Active / 0 Succeeded / 0 Failed`}},
		{[]string{"cj", "nightly"}, []string{`Name:\s+nightly`, `Schedule:\s+0 3 \* \* \*`, `Last Schedule Time:\s+<unset>`}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out := p.MustRun(t, append([]string{"describe"}, c.args...)...)
			lines(t, "describe "+strings.Join(c.args, " "), out, c.want...)
			lines(t, "describe "+strings.Join(c.args, " "), out, `Events:\s+<none>`)
		})
	}
}

// TestErrors checks what describe says when there is nothing to describe,
// as kubectl says it.
func TestErrors(t *testing.T) {
	ns := env.Namespace(t, "describe-errors-")
	p := clitest.New(t, env, ns)
	cases := []struct {
		args   []string
		stderr string
		err    string
	}{
		{[]string{"pods"}, "No resources found in " + ns + " namespace.\n", ""},
		{[]string{"deploy", "-A", "-l", "skiff-test=none"}, "No resources found\n", ""},
		{[]string{"pod", "missing"}, "", `pods.core.skiff.dev "missing" not found`},
		{[]string{"pod/missing"}, "", `pods.core.skiff.dev "missing" not found`},
		{[]string{"pod", "web", "-A"}, "", "cannot be retrieved by name across all namespaces"},
		{[]string{"gadgets"}, "", `resource type "gadgets"`},
		{[]string{}, "", "you must specify the type of resource to describe"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, stderr, err := p.Run(append([]string{"describe"}, c.args...)...)
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if stderr != c.stderr {
				t.Errorf("stderr = %q, want %q", stderr, c.stderr)
			}
			switch {
			case c.err == "" && err != nil:
				t.Error(err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("err = %v, want one containing %q", err, c.err)
			}
		})
	}
}
