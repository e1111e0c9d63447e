package prober

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/hosttest"
)

// localExecer runs probe commands as processes on this machine: the same
// contract as the runtime's task exec, without a container.
type localExecer struct{}

func (localExecer) ExecProbe(ctx context.Context, _ string, cmd []string, _ time.Duration) (int, []byte, error) {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.WaitDelay = 100 * time.Millisecond
	out, err := c.CombinedOutput()
	if ctx.Err() != nil {
		return -1, out, ctx.Err()
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out, nil
	}
	return 0, out, err
}

// brokenExecer cannot run anything, as a runtime whose container is gone.
type brokenExecer struct{}

func (brokenExecer) ExecProbe(context.Context, string, []string, time.Duration) (int, []byte, error) {
	return -1, nil, errors.New("container not found")
}

func execProbe(timeout int32, cmd ...string) *corev1.Probe {
	return &corev1.Probe{TimeoutSeconds: timeout, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}}
}

func TestExecProbe(t *testing.T) {
	hosttest.RequireCommand(t, "sh")
	hosttest.RequireCommand(t, "sleep")
	local := Target{ContainerID: "c1", Execer: localExecer{}}
	cases := []struct {
		name    string
		probe   *corev1.Probe
		target  Target
		want    Result
		message string
	}{
		{"exit 0 is success", execProbe(1, "sh", "-c", "echo ok"), local, Success, "ok\n"},
		{"exit 1 fails with the output", execProbe(1, "sh", "-c", "echo not yet; exit 1"), local, Failure, "not yet\n"},
		{"exit 1 without output says the code", execProbe(1, "sh", "-c", "exit 1"), local, Failure, "command 'sh -c exit 1' exited with 1"},
		{"running out of time fails", execProbe(1, "sleep", "5"), local, Failure, "command 'sleep 5' timed out after 1s"},
		{"a runtime that cannot exec gives no result", execProbe(1, "true"), Target{ContainerID: "c1", Execer: brokenExecer{}}, Unknown, "exec probe in container c1: container not found"},
		{"no execer gives no result", execProbe(1, "true"), Target{ContainerID: "c1"}, Unknown, "exec probe: the runtime gave no Execer for container c1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			got, msg := Probe(context.Background(), tc.probe, &corev1.Container{}, tc.target)
			if got != tc.want || msg != tc.message {
				t.Errorf("Probe = %v %q, want %v %q", got, msg, tc.want, tc.message)
			}
			if took := time.Since(began); took > 3*time.Second {
				t.Errorf("probe took %s, its timeout is %ds", took, tc.probe.TimeoutSeconds)
			}
		})
	}
}

// hostPort splits a test server's address into its host and port.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// closedPort is a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := hostPort(t, l.Addr().String())
	l.Close()
	return port
}

func TestHTTPProbe(t *testing.T) {
	// seen holds the headers of the latest request to /ok.
	seen := make(chan http.Header, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		select {
		case <-seen:
		default:
		}
		seen <- h
		_, _ = w.Write([]byte("fine"))
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 1<<20))) })
	mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost.invalid/ok", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux)
	t.Cleanup(tlsSrv.Close)
	host, port := hostPort(t, srv.Listener.Addr().String())
	_, tlsPort := hostPort(t, tlsSrv.Listener.Addr().String())
	closed := closedPort(t)
	app := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}

	get := func(path string, port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
	}
	withHeaders := get("/ok", intstr.FromInt(port))
	withHeaders.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "app.example"}}
	ownAgent := get("/ok", intstr.FromInt(port))
	ownAgent.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "User-Agent", Value: "mine"}}
	https := get("/ok", intstr.FromInt(tlsPort))
	https.HTTPGet.Scheme = corev1.URISchemeHTTPS
	namedHost := get("/ok", intstr.FromInt(port))
	namedHost.HTTPGet.Host = host

	cases := []struct {
		name    string
		probe   *corev1.Probe
		podIP   string
		want    Result
		message string // a prefix of the message
		headers map[string]string
	}{
		{"200 is success, with the kubelet's headers", get("/ok", intstr.FromInt(port)), host, Success, "fine",
			map[string]string{"User-Agent": "kube-probe/1.37", "Accept": "*/*", "Host": host + ":" + strconv.Itoa(port)}},
		{"the probe's headers are sent, Host as the request's host", withHeaders, host, Success, "fine",
			map[string]string{"X-Probe": "yes", "Host": "app.example", "User-Agent": "kube-probe/1.37"}},
		{"the probe's User-Agent replaces the kubelet's", ownAgent, host, Success, "fine", map[string]string{"User-Agent": "mine"}},
		{"a path without a leading slash", get("ok", intstr.FromInt(port)), host, Success, "fine", nil},
		{"the port by the container's port name", get("/ok", intstr.FromString("http")), host, Success, "fine", nil},
		{"a port name that is a number", get("/ok", intstr.FromString(strconv.Itoa(port))), host, Success, "fine", nil},
		{"the host the probe names, without a pod IP", namedHost, "", Success, "fine", nil},
		{"https without checking the certificate", https, host, Success, "fine", nil},
		{"500 fails", get("/fail", intstr.FromInt(port)), host, Failure, "HTTP probe failed with statuscode: 500", nil},
		{"404 fails", get("/nothing", intstr.FromInt(port)), host, Failure, "HTTP probe failed with statuscode: 404", nil},
		{"a redirect to the same host is followed", get("/here", intstr.FromInt(port)), host, Success, "fine", nil},
		{"a redirect elsewhere is not followed: success with a warning", get("/elsewhere", intstr.FromInt(port)), host, Warning, "Probe terminated redirects, Response body: ", nil},
		{"a redirect loop fails", get("/loop", intstr.FromInt(port)), host, Failure, `Get "/loop": stopped after 10 redirects`, nil},
		{"a large body is read only in part", get("/big", intstr.FromInt(port)), host, Success, strings.Repeat("x", 100), nil},
		{"a slow answer fails at the timeout", get("/slow", intstr.FromInt(port)), host, Failure, "Get \"http://" + host + ":" + strconv.Itoa(port) + "/slow\": context deadline exceeded", nil},
		{"a closed port fails as the kubelet says", get("/ok", intstr.FromInt(closed)), host, Failure,
			"Get \"http://127.0.0.1:" + strconv.Itoa(closed) + "/ok\": dial tcp 127.0.0.1:" + strconv.Itoa(closed) + ": connect: connection refused", nil},
		{"an unknown port name gives no result", get("/ok", intstr.FromString("metrics")), host, Unknown, `httpGet probe: port "metrics" not found`, nil},
		{"no pod IP yet gives no result", get("/ok", intstr.FromInt(port)), "", Unknown, "httpGet probe: pod has no IP yet", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Probe(context.Background(), tc.probe, app, Target{PodIP: tc.podIP})
			if got != tc.want || !strings.HasPrefix(msg, tc.message) {
				t.Errorf("Probe = %v %q, want %v %q...", got, msg, tc.want, tc.message)
			}
			if len(msg) > maxOutput {
				t.Errorf("message of %d bytes, want at most %d", len(msg), maxOutput)
			}
			if tc.headers == nil {
				return
			}
			h := <-seen
			for k, v := range tc.headers {
				if h.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
}

func TestSameHostRedirects(t *testing.T) {
	u := func(s string) *http.Request { p, _ := url.Parse(s); return &http.Request{URL: p} }
	if err := sameHostRedirects(u("http://10.0.0.1:81/b"), []*http.Request{u("http://10.0.0.1:80/a")}); err != nil {
		t.Errorf("same host, other port: %v, want followed", err)
	}
	if err := sameHostRedirects(u("http://10.0.0.2/b"), []*http.Request{u("http://10.0.0.1/a")}); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("other host: %v, want the redirect itself", err)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	host, port := hostPort(t, l.Addr().String())
	closed := closedPort(t)
	app := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "db", ContainerPort: int32(port)}}}
	tcp := func(port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}}
	}
	cases := []struct {
		name    string
		probe   *corev1.Probe
		want    Result
		message string
	}{
		{"a listening port is success", tcp(intstr.FromInt(port)), Success, ""},
		{"by the container's port name", tcp(intstr.FromString("db")), Success, ""},
		{"a closed port fails", tcp(intstr.FromInt(closed)), Failure, "dial tcp 127.0.0.1:" + strconv.Itoa(closed) + ": connect: connection refused"},
		{"port 0 gives no result", tcp(intstr.FromInt(0)), Unknown, "tcpSocket probe: invalid port number 0: must be 1-65535"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Probe(context.Background(), tc.probe, app, Target{PodIP: host})
			if got != tc.want || msg != tc.message {
				t.Errorf("Probe = %v %q, want %v %q", got, msg, tc.want, tc.message)
			}
		})
	}
}

func TestGRPCProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	bare := grpc.NewServer() // speaks gRPC, without the health service
	lb, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = bare.Serve(lb) }()
	t.Cleanup(bare.Stop)

	host, port := hostPort(t, l.Addr().String())
	_, barePort := hostPort(t, lb.Addr().String())
	closed := closedPort(t)
	check := func(port int, service string) *corev1.Probe {
		a := &corev1.GRPCAction{Port: int32(port)}
		if service != "" {
			a.Service = &service
		}
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{GRPC: a}}
	}
	cases := []struct {
		name    string
		probe   *corev1.Probe
		want    Result
		message string // a prefix of the message
	}{
		{"SERVING is success", check(port, ""), Success, "service healthy"},
		{"NOT_SERVING fails", check(port, "db"), Failure, `service unhealthy (responded with "NOT_SERVING")`},
		{"an unknown service fails", check(port, "cache"), Failure, "error: health rpc probe failed: rpc error: code = NotFound"},
		{"a server without the health service fails", check(barePort, ""), Failure, "this server does not implement the grpc health protocol (grpc.health.v1.Health)"},
		{"a closed port fails", check(closed, ""), Failure, `error: failed to connect service at "127.0.0.1:` + strconv.Itoa(closed) + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := Probe(context.Background(), tc.probe, &corev1.Container{}, Target{PodIP: host})
			if got != tc.want || !strings.HasPrefix(msg, tc.message) {
				t.Errorf("Probe = %v %q, want %v %q...", got, msg, tc.want, tc.message)
			}
		})
	}
}
