package podio_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/exec"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/containertest"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
	"skiff.dev/skiff/nodeagent/server"
)

// testNode is a real node for the plugin to reach: a private containerd
// with the busybox image, its pods in the host's network, and the node
// agent's server on a local port with a serving certificate of its own CA,
// knowing users by the test cluster's client certificates.
type testNode struct {
	name string
	rt   *containerd.Runtime
	// caPEM verifies the server's certificate.
	caPEM []byte
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	rt, _ := containertest.StartRuntime(t, env.Root)
	n := &testNode{name: "podio-" + rand.String(5), rt: rt}
	dir := t.TempDir()

	// The serving certificate is signed by a CA of its own, which the
	// kubeconfig will hold beside the apiserver's, as make up's does.
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.caPEM = certPEM
	certFile, keyFile := filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{
		Addr: "127.0.0.1:0", NodeName: n.name, CertFile: certFile, KeyFile: keyFile,
		ClientCAFile: env.ClientCAFile(), Client: env.Client, Runtime: rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the node agent's server", srv.Start)
	_, port, _ := net.SplitHostPort(srv.Addr())
	n.register(t, port)
	return n
}

// register creates the Node, reporting where its agent serves, as the
// agent does.
func (n *testNode) register(t *testing.T, port string) {
	t.Helper()
	ctx := context.Background()
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	node := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), node) })
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	if err := env.Client.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
}

// runPod creates a pod bound to the node, with labels, one container
// "main" running script, and syncs it as the agent would until it runs
// (with restarts, until it has restarted that often).
func (n *testNode) runPod(t *testing.T, ns string, labels map[string]string, policy corev1.RestartPolicy, restarts int32, script string) *skiffcorev1.Pod {
	t.Helper()
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pod-" + rand.String(6), Labels: labels}}
	pod.Spec.NodeName, pod.Spec.RestartPolicy = n.name, policy
	pod.Spec.Containers = []corev1.Container{{Name: "main", Image: images.Busybox, Command: []string{"sh", "-c", script}}}
	if err := env.Client.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	containertest.SyncUntilRunning(t, n.rt, pod, restarts)
	return pod
}

// plugin is `kubectl skiff` with the test cluster's admin, who holds a
// client certificate (user skiff-admin, group system:masters), not a
// token. With trustAgent its kubeconfig's CA bundle also holds the CA of
// the agent's serving certificate.
func (n *testNode) plugin(t *testing.T, ns string, trustAgent bool) clitest.Plugin {
	t.Helper()
	p := clitest.New(t, env, ns)
	cfg, err := clientcmd.LoadFromFile(p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range cfg.Clusters {
		if cluster.CertificateAuthorityData == nil {
			t.Fatalf("the admin kubeconfig has no CA data: %+v", cluster)
		}
		if trustAgent {
			cluster.CertificateAuthorityData = append(cluster.CertificateAuthorityData, n.caPEM...)
		}
	}
	for _, user := range cfg.AuthInfos {
		if user.ClientCertificateData == nil || user.Token != "" {
			t.Fatalf("the admin must authenticate with a client certificate, has %+v", user)
		}
	}
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenPlugin is `kubectl skiff` as a service account that holds a bearer
// token and may read pods and nodes and exec through the node agents.
func (n *testNode) tokenPlugin(t *testing.T, ns string) clitest.Plugin {
	t.Helper()
	return n.plugin(t, ns, true).AsServiceAccount(t, env, "exec",
		rbacv1.PolicyRule{APIGroups: []string{skiffcorev1.GroupVersion.Group}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list"}},
		rbacv1.PolicyRule{APIGroups: []string{skiffcorev1.GroupVersion.Group}, Resources: []string{"nodes/proxy"}, Verbs: []string{"create"}},
	)
}

// TestLogs reads real containers' logs through the plugin: a pod's, a
// Deployment's pod's, the last lines, timestamps, every pod of a selector
// with prefixes, a follow that streams a line written after it began, and
// the previous run's.
func TestLogs(t *testing.T) {
	n := startNode(t)
	ns := env.Namespace(t, "logs")
	k := n.plugin(t, ns, true)
	const forever = `trap 'exit 0' TERM; while true; do sleep 0.1; done`
	web := n.runPod(t, ns, map[string]string{"app": "web", "tier": "front"}, corev1.RestartPolicyAlways, 0, "echo one; echo two; echo three; "+forever)
	counter := n.runPod(t, ns, map[string]string{"app": "web", "tier": "back"}, corev1.RestartPolicyAlways, 0, "seq 1 12; "+forever)
	deploy := &skiffappsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
	deploy.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
	deploy.Spec.Template.Labels = deploy.Spec.Selector.MatchLabels
	deploy.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: images.Busybox}}
	if err := env.Client.Create(context.Background(), deploy); err != nil {
		t.Fatal(err)
	}
	// A Deployment of both pods, of which kubectl picks one and says so.
	both := deploy.DeepCopy()
	both.ResourceVersion, both.Name = "", "both"
	both.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	both.Spec.Template.Labels = both.Spec.Selector.MatchLabels
	if err := env.Client.Create(context.Background(), both); err != nil {
		t.Fatal(err)
	}
	// The log driver copies the output a moment after it is written.
	testenv.Eventually(t, 30*time.Second, func() error {
		if out, _, err := k.Run("logs", web.Name); err != nil || out != "one\ntwo\nthree\n" {
			return fmt.Errorf("logs: %q, %v", out, err)
		}
		if out, _, err := k.Run("logs", counter.Name, "--tail=1"); err != nil || out != "12\n" {
			return fmt.Errorf("logs: %q, %v", out, err)
		}
		return nil
	})

	for _, tc := range []struct {
		name       string
		args       []string
		want       string // a regexp of the whole output
		wantStderr string // a regexp of the whole of stderr
	}{
		{"the last line", []string{"logs", web.Name, "--tail=1"}, `^three\n$`, `^$`},
		{"timestamps", []string{"logs", web.Name, "--timestamps", "--tail", "1"}, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z three\n$`, `^$`},
		{"the container named", []string{"logs", web.Name, "-c", "main", "--tail=1"}, `^three\n$`, `^$`},
		{"a Deployment's pod", []string{"logs", "deploy/web"}, `^one\ntwo\nthree\n$`, `^$`},
		{"a Deployment's pod out of two, said on stderr", []string{"logs", "deploy/both", "--tail=1"},
			`^(three|12)\n$`, `^Found 2 pods, using pod/(` + web.Name + `|` + counter.Name + `)\n$`},
		{"a selector's pod, with prefixes", []string{"logs", "-l", "tier=front", "--prefix"}, `^(\[pod/` + web.Name + `/main\] (one|two|three)\n){3}$`, `^$`},
		{"every container", []string{"logs", web.Name, "--all-containers", "--tail=2"}, `^two\nthree\n$`, `^$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := k.Run(tc.args...)
			if err != nil {
				t.Fatalf("kubectl skiff %s: %v\n%s", strings.Join(tc.args, " "), err, stderr)
			}
			if !regexp.MustCompile(tc.want).MatchString(out) {
				t.Errorf("kubectl skiff %s: %q, want %s", strings.Join(tc.args, " "), out, tc.want)
			}
			if !regexp.MustCompile(tc.wantStderr).MatchString(stderr) {
				t.Errorf("kubectl skiff %s: stderr %q, want %s", strings.Join(tc.args, " "), stderr, tc.wantStderr)
			}
			// The pod whose logs came is the one named.
			if picked := regexp.MustCompile(`pod/(\S+)`).FindStringSubmatch(stderr); picked != nil {
				want := map[string]string{web.Name: "three\n", counter.Name: "12\n"}[picked[1]]
				if out != want {
					t.Errorf("logs %q of the pod %s named on stderr, want %q", out, picked[1], want)
				}
			}
		})
	}

	t.Run("every pod of a selector, 10 lines each", func(t *testing.T) {
		out := k.MustRun(t, "logs", "-l", "app=web", "--prefix")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		slices.Sort(lines)
		want := []string{}
		for i := 3; i <= 12; i++ {
			want = append(want, fmt.Sprintf("[pod/%s/main] %d", counter.Name, i))
		}
		for _, l := range []string{"one", "three", "two"} {
			want = append(want, fmt.Sprintf("[pod/%s/main] %s", web.Name, l))
		}
		slices.Sort(want)
		if !slices.Equal(lines, want) {
			t.Errorf("logs -l app=web --prefix:\n%s\nwant the lines (sorted) %q", out, want)
		}
	})

	t.Run("follow", func(t *testing.T) {
		once := n.runPod(t, ns, nil, corev1.RestartPolicyNever, 0, "echo first; sleep 3; echo second")
		testenv.Eventually(t, 30*time.Second, func() error {
			if out, _, err := k.Run("logs", once.Name); err != nil || out != "first\n" {
				return fmt.Errorf("logs before the second line: %q, %v", out, err)
			}
			return nil
		})
		start := time.Now()
		out := k.MustRun(t, "logs", "-f", once.Name)
		if out != "first\nsecond\n" {
			t.Errorf("logs -f: %q, want both lines", out)
		}
		// It began before the second line was written and ended with the run.
		if took := time.Since(start); took < time.Second || took > 20*time.Second {
			t.Errorf("logs -f took %s: it should wait for the second line, then end with the run", took)
		}
	})

	t.Run("previous", func(t *testing.T) {
		// Each run prints its own start time, then fails.
		restarted := n.runPod(t, ns, nil, corev1.RestartPolicyAlways, 1, `echo "run $(date +%s%N)"; sleep 1; exit 1`)
		latest := k.MustRun(t, "logs", restarted.Name)
		previous := k.MustRun(t, "logs", "--previous", restarted.Name)
		if !strings.HasPrefix(latest, "run ") || !strings.HasPrefix(previous, "run ") || latest == previous {
			t.Errorf("latest run logged %q, previous %q: want two different runs", latest, previous)
		}
		if short := k.MustRun(t, "logs", "-p", restarted.Name); short != previous {
			t.Errorf("logs -p: %q, want --previous's %q", short, previous)
		}
	})
}

// TestExec runs commands in a real container through the plugin, with the
// admin's client certificate: output, stdin piped with -i, -t without a
// terminal, and a failing command's exit code.
func TestExec(t *testing.T) {
	n := startNode(t)
	ns := env.Namespace(t, "exec")
	k := n.plugin(t, ns, true)
	pod := n.runPod(t, ns, nil, corev1.RestartPolicyAlways, 0, `trap 'exit 0' TERM; while true; do sleep 0.1; done`)

	if out := k.MustRun(t, "exec", pod.Name, "--", "echo", "hi"); out != "hi\n" {
		t.Errorf("exec -- echo hi: %q", out)
	}
	if out, _, err := k.RunWithInput("piped\nin\n", "exec", "-i", pod.Name, "--", "cat"); err != nil || out != "piped\nin\n" {
		t.Errorf("exec -i -- cat: %q, %v; want the input back", out, err)
	}
	out, errOut, err := k.RunWithInput("", "exec", "-it", pod.Name, "--", "echo", "hi")
	if err != nil || out != "hi\n" || !strings.Contains(errOut, "Unable to use a TTY - input is not a terminal") {
		t.Errorf("exec -it without a terminal: %q, %q, %v; want a warning and the output", out, errOut, err)
	}
	if out := n.tokenPlugin(t, ns).MustRun(t, "exec", pod.Name, "--", "echo", "with a token"); out != "with a token\n" {
		t.Errorf("exec with a service account's token: %q", out)
	}
	_, _, err = k.Run("exec", pod.Name, "--", "sh", "-c", "exit 3")
	var exit exec.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 3 {
		t.Errorf("exec of a command that exits 3: %v, want its exit code", err)
	}
}

// TestErrors checks kubectl's errors, and that the agent's serving
// certificate is verified with the kubeconfig's CA unless
// --insecure-skip-tls-verify-backend says otherwise.
func TestErrors(t *testing.T) {
	n := startNode(t)
	ns := env.Namespace(t, "errors")
	k := n.plugin(t, ns, true)
	pod := n.runPod(t, ns, nil, corev1.RestartPolicyAlways, 0, `echo hello; trap 'exit 0' TERM; while true; do sleep 0.1; done`)
	// No agent runs this one: its containers wait to start.
	two := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "two"}}
	two.Spec.NodeName = n.name
	two.Spec.Containers = []corev1.Container{{Name: "a", Image: images.Busybox}, {Name: "b", Image: images.Busybox}}
	if err := env.Client.Create(context.Background(), two); err != nil {
		t.Fatal(err)
	}

	defaulted := `Defaulted container "a" out of: a, b` + "\n"
	for _, tc := range []struct {
		name       string
		args       []string
		wantErr    string
		wantErrOut string
	}{
		{"logs of no pod", []string{"logs", "nope"}, `pods "nope" not found`, ""},
		{"exec in no pod", []string{"exec", "nope", "--", "true"}, `pods "nope" not found`, ""},
		{"a Deployment that does not exist", []string{"logs", "deploy/nope"}, `deployments "nope" not found`, ""},
		{"several containers: the first, said", []string{"logs", "two"}, `container "a" in pod "two" is waiting to start`, defaulted},
		{"several containers, exec: the first, said", []string{"exec", "two", "--", "true"}, `container "a" in pod "two" is not running`, defaulted},
		{"several containers, exec -q: the first, quietly", []string{"exec", "-q", "two", "--", "true"}, `container "a" in pod "two" is not running`, ""},
		{"a container the pod lacks", []string{"logs", pod.Name, "-c", "other"}, "container other is not valid for pod " + pod.Name + " out of: ", ""},
		{"a container not started", []string{"logs", "two", "-c", "a"}, `container "a" in pod "two" is waiting to start`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := k.Run(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errOut != tc.wantErrOut {
				t.Errorf("kubectl skiff %s: %v, stderr %q; want an error with %q, stderr %q", strings.Join(tc.args, " "), err, errOut, tc.wantErr, tc.wantErrOut)
			}
		})
	}

	t.Run("an agent the kubeconfig's CA did not sign", func(t *testing.T) {
		untrusting := n.plugin(t, ns, false)
		if _, _, err := untrusting.Run("logs", pod.Name); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("logs: %v, want the serving certificate refused", err)
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if out, _, err := untrusting.Run("logs", pod.Name, "--insecure-skip-tls-verify-backend"); err != nil || out != "hello\n" {
				return fmt.Errorf("logs --insecure-skip-tls-verify-backend: %q, %v", out, err)
			}
			return nil
		})
		if out := untrusting.MustRun(t, "exec", "--insecure-skip-tls-verify-backend", pod.Name, "--", "echo", "hi"); out != "hi\n" {
			t.Errorf("exec --insecure-skip-tls-verify-backend: %q", out)
		}
	})
}
