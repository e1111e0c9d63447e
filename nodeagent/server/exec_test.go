package server

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/containertest"
	"skiff.dev/skiff/nodeagent/containerd"
)

// runPod creates a pod bound to node and syncs it, as the agent does,
// until its container runs (or, with restarts, has restarted that often).
func runPod(t *testing.T, rt *containerd.Runtime, image, node string, policy corev1.RestartPolicy, restarts int32, script string) *skiffcorev1.Pod {
	t.Helper()
	pod := boundPodObject(t, node, image, "sh", "-c", script)
	pod.Spec.RestartPolicy = policy
	containertest.SyncUntilRunning(t, rt, pod, restarts)
	return pod
}

// fixedSize is a terminal whose size is set once.
type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 100, Height: 40}
}

// TestExec runs commands in a real container through client-go's SPDY and
// WebSocket executors, as kubectl and `kubectl skiff exec` do: output,
// stderr, exit codes, stdin to its end, and a terminal with its size.
func TestExec(t *testing.T) {
	rt, image := containertest.StartRuntime(t, env.Root)
	const node = "node-exec"
	pod := runPod(t, rt, image, node, corev1.RestartPolicyAlways, 0, `trap 'exit 0' TERM; while true; do sleep 0.1; done`)
	base := startServer(t, node, rt)
	token := serviceAccount(t, grant{"proxy", []string{"create"}})
	cfg := &rest.Config{Host: base, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}

	executors := map[string]func(u *url.URL) (remotecommand.Executor, error){
		"spdy": func(u *url.URL) (remotecommand.Executor, error) { return remotecommand.NewSPDYExecutor(cfg, "POST", u) },
		"websocket": func(u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
		},
	}
	for _, tc := range []struct {
		name       string
		cmd        []string
		stdin      string
		tty        bool
		wantOut    string
		wantErrOut string
		wantCode   int
	}{
		{name: "output", cmd: []string{"echo", "hi"}, wantOut: "hi\n"},
		{name: "stderr and an exit code", cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, wantOut: "out\n", wantErrOut: "err\n", wantCode: 3},
		{name: "stdin to its end", cmd: []string{"cat"}, stdin: "piped\nin\n", wantOut: "piped\nin\n"},
		{name: "a terminal", cmd: []string{"sh", "-c", "tty -s && echo tty"}, tty: true, wantOut: "tty\r\n"},
		{name: "the terminal's size", cmd: []string{"sh", "-c", "sleep 0.5; stty size"}, tty: true, wantOut: "40 100\r\n"},
	} {
		for kind, newExecutor := range executors {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				q := url.Values{"command": tc.cmd, "stdout": {"true"}}
				if !tc.tty {
					q.Set("stderr", "true")
				}
				if tc.stdin != "" {
					q.Set("stdin", "true")
				}
				if tc.tty {
					q.Set("tty", "true")
				}
				u, err := url.Parse(base + "/exec/default/" + pod.Name + "/main?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				e, err := newExecutor(u)
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: tc.tty}
				if !tc.tty {
					opts.Stderr = &stderr
				}
				if tc.stdin != "" {
					opts.Stdin = strings.NewReader(tc.stdin)
				}
				if tc.tty {
					opts.TerminalSizeQueue = &fixedSize{}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err = e.StreamWithContext(ctx, opts)
				var exit exec.CodeExitError
				switch {
				case tc.wantCode == 0 && err != nil:
					t.Fatalf("exec %q: %v", tc.cmd, err)
				case tc.wantCode != 0 && (!errors.As(err, &exit) || exit.Code != tc.wantCode):
					t.Fatalf("exec %q: error %v, want exit code %d", tc.cmd, err, tc.wantCode)
				}
				if stdout.String() != tc.wantOut || stderr.String() != tc.wantErrOut {
					t.Errorf("exec %q: stdout %q, stderr %q; want %q, %q", tc.cmd, stdout.String(), stderr.String(), tc.wantOut, tc.wantErrOut)
				}
			})
		}
	}
}

// TestContainerLogs reads a real container's logs through the server:
// the latest run, the previous one, and a follow that ends with the run.
func TestContainerLogs(t *testing.T) {
	rt, image := containertest.StartRuntime(t, env.Root)
	const node = "node-logs"
	base := startServer(t, node, rt)
	token := serviceAccount(t, grant{"log", []string{"get"}})
	logs := func(pod *skiffcorev1.Pod, query string) (int, string) {
		return get(t, base+"/containerLogs/default/"+pod.Name+"/main?"+query, token)
	}

	waiting := boundPodObject(t, node, image, "true")
	if code, body := logs(waiting, ""); code != 400 || !strings.Contains(body, `container "main" in pod "`+waiting.Name+`" is waiting to start: ContainerCreating`) {
		t.Errorf("logs of a pod not started: %d %q, want upstream's 400", code, body)
	}

	// Each run prints its own start time, then lives for a second.
	restarted := runPod(t, rt, image, node, corev1.RestartPolicyAlways, 1, `echo "run $(date +%s%N)"; sleep 1; exit 1`)
	_, latest := logs(restarted, "")
	_, previous := logs(restarted, "previous=true")
	if !strings.HasPrefix(latest, "run ") || !strings.HasPrefix(previous, "run ") || latest == previous {
		t.Errorf("latest run logged %q, previous %q: want two different runs", latest, previous)
	}

	// A follow prints lines as they come and ends when the run does.
	once := runPod(t, rt, image, node, corev1.RestartPolicyNever, 0, `echo first; sleep 1; echo second`)
	if code, body := logs(once, "previous=true"); code != 400 || !strings.Contains(body, `previous terminated container "main" in pod "`+once.Name+`" not found`) {
		t.Errorf("previous of a first run: %d %q, want upstream's 400", code, body)
	}
	start := time.Now()
	code, body := logs(once, "follow=true&timestamps=true")
	if code != 200 || !strings.Contains(body, " first\n") || !strings.HasSuffix(body, " second\n") {
		t.Errorf("follow: %d %q, want both lines with timestamps", code, body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("follow took %s: it should end soon after the run", took)
	}
	if code, body = logs(once, "tailLines=1"); body != "second\n" {
		t.Errorf("tailLines=1: %d %q", code, body)
	}
}

// The exec parameters of the pods/exec API are accepted beside the
// kubelet's own.
func TestKubeletExecQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"command=ls&input=1&output=1&error=1&tty=1", "command=ls&error=1&input=1&output=1&tty=1"},
		{"command=ls&stdin=true&stdout=true&stderr=1&tty=true", "command=ls&error=1&input=1&output=1&tty=1"},
		{"command=ls&stdout=false&stderr=true", "command=ls&error=1"},
	} {
		q, err := url.ParseQuery(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := kubeletExecQuery(q).Encode(); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}
