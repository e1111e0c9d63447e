package podio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    target
		wantErr string
	}{
		{arg: "web-0", want: target{kindPod, "web-0"}},
		{arg: "pod/web-0", want: target{kindPod, "web-0"}},
		{arg: "po/web-0", want: target{kindPod, "web-0"}},
		{arg: "deploy/web", want: target{kindDeployment, "web"}},
		{arg: "deployments.apps/web", want: target{kindDeployment, "web"}},
		{arg: "Deployment.apps.skiff.dev/web", want: target{kindDeployment, "web"}},
		{arg: "rs/web-7d9f", want: target{kindReplicaSet, "web-7d9f"}},
		{arg: "sts/db", want: target{kindStatefulSet, "db"}},
		{arg: "ds/agent", want: target{kindDaemonSet, "agent"}},
		{arg: "job/pi", want: target{kindJob, "pi"}},
		{arg: "jobs.batch.skiff.dev/pi", want: target{kindJob, "pi"}},
		{arg: "svc/web", wantErr: `cannot find the pods of resource type "svc"`},
		{arg: "deploy/", wantErr: "must have a single resource and name"},
		{arg: "deploy/a/b", wantErr: "must have a single resource and name"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, err := parseTarget(tc.arg)
			if !errorContains(err, tc.wantErr) || got != tc.want {
				t.Errorf("got %v, %v; want %v, error %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseExecArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		dash    int
		wantPod string
		wantCmd []string
		wantErr string
	}{
		{name: "pod -- command", args: []string{"web-0", "echo", "hi"}, dash: 1, wantPod: "web-0", wantCmd: []string{"echo", "hi"}},
		{name: "a workload", args: []string{"deploy/web", "sh"}, dash: 1, wantPod: "deploy/web", wantCmd: []string{"sh"}},
		{name: "no --", args: []string{"web-0", "date"}, dash: -1, wantErr: "use exec [POD] -- [COMMAND]"},
		{name: "no command", args: []string{"web-0"}, dash: -1, wantErr: "at least one command"},
		{name: "nothing after --", args: []string{"web-0"}, dash: 1, wantErr: "at least one command"},
		{name: "no pod", args: []string{"date"}, dash: 0, wantErr: "POD or TYPE/NAME is a required argument"},
		{name: "two pods", args: []string{"a", "b", "date"}, dash: 2, wantErr: "one POD or TYPE/NAME before --"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod, cmd, err := parseExecArgs(tc.args, tc.dash)
			if !errorContains(err, tc.wantErr) || pod != tc.wantPod || strings.Join(cmd, " ") != strings.Join(tc.wantCmd, " ") {
				t.Errorf("got %q %q %v; want %q %q, error %q", pod, cmd, err, tc.wantPod, tc.wantCmd, tc.wantErr)
			}
		})
	}
}

func TestChooseContainer(t *testing.T) {
	pod := func(containers []string, init ...string) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		}
		for _, c := range init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: c})
		}
		return p
	}
	annotated := func(def string) *skiffcorev1.Pod {
		p := pod([]string{"a", "b"}, "setup")
		p.Annotations = map[string]string{defaultContainerAnnotation: def}
		return p
	}
	for _, tc := range []struct {
		name     string
		pod      *skiffcorev1.Pod
		asked    string
		want     string
		wantWarn string
		wantErr  string
	}{
		{name: "the only one", pod: pod([]string{"main"}), want: "main"},
		{name: "the one asked for", pod: pod([]string{"a", "b"}), asked: "b", want: "b"},
		{name: "an init container asked for", pod: pod([]string{"a"}, "setup"), asked: "setup", want: "setup"},
		{name: "the first of several", pod: pod([]string{"a", "b"}), want: "a", wantWarn: `Defaulted container "a" out of: a, b` + "\n"},
		{name: "the first, init containers listed", pod: pod([]string{"app", "sidecar"}, "init"), want: "app",
			wantWarn: `Defaulted container "app" out of: app, sidecar, init (init)` + "\n"},
		{name: "the only one beside an init container", pod: pod([]string{"app"}, "init"), want: "app",
			wantWarn: `Defaulted container "app" out of: app, init (init)` + "\n"},
		{name: "the annotated default, silently", pod: annotated("b"), want: "b"},
		{name: "an annotated init container", pod: annotated("setup"), want: "setup"},
		{name: "an annotated default the pod lacks", pod: annotated("gone"), want: "a",
			wantWarn: `Default container name "gone" not found in pod x` + "\n" + `Defaulted container "a" out of: a, b, setup (init)` + "\n"},
		{name: "asked for beats the annotation", pod: annotated("b"), asked: "a", want: "a"},
		{name: "one the pod lacks", pod: pod([]string{"a", "b"}, "setup"), asked: "c", wantErr: "container c is not valid for pod x out of: a, b, setup (init)"},
		{name: "no containers", pod: pod(nil), wantErr: "pod /x does not have any containers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warn bytes.Buffer
			got, err := chooseContainer(tc.pod, tc.asked, &warn)
			if !errorContains(err, tc.wantErr) || got != tc.want || warn.String() != tc.wantWarn {
				t.Errorf("got %q, %v, warning %q; want %q, error %q, warning %q", got, err, warn.String(), tc.want, tc.wantErr, tc.wantWarn)
			}
		})
	}
}

// TestByLogging checks the order a workload's pods are picked in for
// logs and exec: scheduled, running, ready (for longer), restarted more,
// older.
func TestByLogging(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	pod := func(name, node string, phase corev1.PodPhase, readySince *metav1.Time, restarts int32, created metav1.Time) skiffcorev1.Pod {
		p := skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: created}}
		p.Spec.NodeName, p.Status.Phase = node, phase
		if readySince != nil {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: *readySince}}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: restarts}}
		return p
	}
	for _, tc := range []struct {
		name        string
		better, not skiffcorev1.Pod
	}{
		{"scheduled before pending", pod("a", "n1", corev1.PodPending, nil, 0, t1), pod("b", "", corev1.PodPending, nil, 0, t0)},
		{"running before pending", pod("a", "n1", corev1.PodRunning, nil, 0, t1), pod("b", "n1", corev1.PodPending, nil, 0, t0)},
		{"pending before succeeded", pod("a", "n1", corev1.PodPending, nil, 0, t1), pod("b", "n1", corev1.PodSucceeded, nil, 0, t0)},
		{"ready before not ready", pod("a", "n1", corev1.PodRunning, &t1, 0, t1), pod("b", "n1", corev1.PodRunning, nil, 5, t0)},
		{"ready for longer", pod("a", "n1", corev1.PodRunning, &t0, 0, t1), pod("b", "n1", corev1.PodRunning, &t1, 5, t0)},
		{"more restarts", pod("a", "n1", corev1.PodRunning, nil, 2, t1), pod("b", "n1", corev1.PodRunning, nil, 1, t0)},
		{"older", pod("a", "n1", corev1.PodRunning, nil, 0, t0), pod("b", "n1", corev1.PodRunning, nil, 0, t1)},
	} {
		if !byLogging(&tc.better, &tc.not) || byLogging(&tc.not, &tc.better) {
			t.Errorf("%s: %s should come first", tc.name, tc.better.Name)
		}
	}
}

func TestAgentEndpoint(t *testing.T) {
	node := func(port int32, addrs ...corev1.NodeAddress) *skiffcorev1.Node {
		n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
		n.Status.Addresses = addrs
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		return n
	}
	internal := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.250.0.2"}
	for _, tc := range []struct {
		name    string
		node    *skiffcorev1.Node
		want    string
		wantErr string
	}{
		{name: "InternalIP and the kubelet port", node: node(10250, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "n1"}, internal), want: "https://10.250.0.2:10250"},
		{name: "another port", node: node(11250, internal), want: "https://10.250.0.2:11250"},
		{name: "no port reported", node: node(0, internal), want: "https://10.250.0.2:10250"},
		{name: "ExternalIP when no InternalIP", node: node(10250, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "192.0.2.1"}), want: "https://192.0.2.1:10250"},
		{name: "IPv6", node: node(10250, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::2"}), want: "https://[fd00::2]:10250"},
		{name: "no address", node: node(10250), wantErr: "node n1 reports no InternalIP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := agentEndpoint(tc.node)
			if !errorContains(err, tc.wantErr) || got != tc.want {
				t.Errorf("got %q, %v; want %q, error %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestURLs(t *testing.T) {
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-0"}}
	const base = "https://10.250.0.2:10250"
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"logs, every line", logsURL(base, p, "app", logOptions{tail: -1}), base + "/containerLogs/ns/web-0/app?"},
		{"logs with every option", logsURL(base, p, "app", logOptions{follow: true, previous: true, timestamps: true, tail: 0, since: 1500 * time.Millisecond, limitBytes: 100}),
			base + "/containerLogs/ns/web-0/app?follow=true&limitBytes=100&previous=true&sinceSeconds=2&tailLines=0&timestamps=true"},
		{"exec", execURL(base, p, "app", []string{"sh", "-c", "echo hi"}, false, false), base + "/exec/ns/web-0/app?command=sh&command=-c&command=echo+hi&stderr=true&stdout=true"},
		{"exec with stdin and a terminal", execURL(base, p, "app", []string{"sh"}, true, true), base + "/exec/ns/web-0/app?command=sh&stdin=true&stdout=true&tty=true"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, tc.got, tc.want)
		}
	}
}

func TestLogsArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       logsOptions
		args    []string
		wantErr string
	}{
		{name: "a pod", args: []string{"web-0"}},
		{name: "a pod and its container", args: []string{"web-0", "app"}},
		{name: "a selector", o: logsOptions{selector: "app=web"}},
		{name: "nothing", wantErr: "POD or TYPE/NAME is a required argument for the logs command"},
		{name: "both", o: logsOptions{selector: "app=web"}, args: []string{"web-0"}, wantErr: "not both"},
		{name: "two containers", o: logsOptions{container: "a"}, args: []string{"web-0", "b"}, wantErr: "only one of -c or an inline [CONTAINER]"},
		{name: "all and one", o: logsOptions{container: "a", allContainers: true}, args: []string{"web-0"}, wantErr: "--all-containers=true should not be specified with container name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.checkArgs(tc.args); !errorContains(err, tc.wantErr) {
				t.Errorf("got %v, want error %q", err, tc.wantErr)
			}
		})
	}
}

// TestPrintLogs checks that logs followed side by side never mix within a
// line, and that --prefix names each line's container.
func TestPrintLogs(t *testing.T) {
	pod := func(name string) *skiffcorev1.Pod { return &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	sources := []logSource{{pod("a"), "main"}, {pod("b"), "main"}, {pod("b"), "side"}}
	// Each source writes its lines in pieces that cut them in the middle.
	get := func(s logSource, w io.Writer) error {
		for i := range 50 {
			line := fmt.Sprintf("%s/%s line %d\n", s.pod.Name, s.container, i)
			for _, part := range []string{line[:3], line[3:]} {
				if _, err := io.WriteString(w, part); err != nil {
					return err
				}
			}
		}
		if s.container == "side" {
			return errors.New("side failed")
		}
		_, err := io.WriteString(w, "no newline")
		return err
	}
	// printLogs writes under a lock of its own.
	var out bytes.Buffer
	err := printLogs(sources, true, true, &out, get)
	if err == nil || err.Error() != "side failed" {
		t.Errorf("error %v, want the failed source's", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	counts := map[string]int{}
	for _, l := range lines {
		prefix, rest, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("line %q has no prefix", l)
		}
		if rest != "no newline" && !strings.HasPrefix(rest, strings.Trim(prefix, "[]")[len("pod/"):]+" line ") {
			t.Errorf("line %q mixes sources", l)
		}
		counts[prefix]++
	}
	want := map[string]int{"[pod/a/main]": 51, "[pod/b/main]": 51, "[pod/b/side]": 50}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("lines per source %v, want %v", counts, want)
	}

	// One after the other without --prefix, as written.
	var seq bytes.Buffer
	if err := printLogs(sources[:2], false, false, &seq, get); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(seq.String(), "a/main line 0\n") || !strings.Contains(seq.String(), "a/main line 49\nno newlineb/main line 0\n") {
		t.Errorf("sequential logs: %q", seq.String()[:80])
	}
}

// errorContains reports whether err matches want: nil for "", else an
// error containing it.
func errorContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
