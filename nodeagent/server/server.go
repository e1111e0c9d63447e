// Package server is the node agent's HTTPS server: the kubelet's
// /containerLogs and /exec endpoints, which `kubectl skiff logs` and
// `kubectl skiff exec` call, and its /stats/summary, which `kubectl skiff
// top` reads. As the kubelet does, it authenticates callers
// by a client certificate of the cluster's CA (--client-ca-file) or by
// their bearer token through a TokenReview, and authorizes each request
// through a SubjectAccessReview on the node's log, proxy or stats subresource.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// DefaultPort is the kubelet's port, which the agent serves on unless told
// otherwise, and which its Node reports in
// status.daemonEndpoints.kubeletEndpoint.
const DefaultPort = 10250

// Runtime is what the server needs of the container runtime; the
// containerd runtime implements it.
type Runtime interface {
	// ContainerLogs finds the CRI log file of a container's latest run (or
	// the one before it when previous) and says whether that run still runs.
	ContainerLogs(ctx context.Context, pod *skiffcorev1.Pod, container string, previous bool) (path string, running bool, err error)
	// Exec runs cmd in the container with the caller's streams, returning
	// a k8s.io/utils/exec.ExitError when it exits non-zero.
	Exec(ctx context.Context, pod *skiffcorev1.Pod, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.WriteCloser, resize <-chan remotecommand.TerminalSize) error
}

// Config says where the server listens, as which node, and with what.
type Config struct {
	// Addr is the address to listen on, ":10250" by default.
	Addr string
	// NodeName is the node the agent runs: requests are authorized on
	// nodes/<NodeName> and serve only the pods bound to it.
	NodeName string
	// CertFile and KeyFile are the serving certificate and key (PEM); when
	// empty a self-signed pair for NodeName is made at start, as the
	// kubelet does without --tls-cert-file.
	CertFile, KeyFile string
	// ClientCAFile is the CA bundle (PEM) that signs the client
	// certificates callers may present instead of a bearer token, the
	// kubelet's --client-ca-file; empty accepts bearer tokens only.
	ClientCAFile string
	// Client reads pods and creates TokenReviews and SubjectAccessReviews.
	Client client.Client
	// Runtime runs the containers.
	Runtime Runtime
}

// Server serves the kubelet's streaming endpoints. It is a
// controller-runtime Runnable: the agent's manager starts and stops it.
type Server struct {
	cfg   Config
	ln    net.Listener
	srv   *http.Server
	authn *authenticator
	// cpu holds the last CPU readings, the baselines of /stats/summary's rates.
	cpu cpuRates
}

var _ manager.Runnable = &Server{}
var _ manager.LeaderElectionRunnable = &Server{}

// New loads or makes the serving certificate and listens on cfg.Addr at
// once, so that a port in use fails the agent's start, not later.
func New(cfg Config) (*Server, error) {
	if cfg.NodeName == "" || cfg.Client == nil || cfg.Runtime == nil {
		return nil, errors.New("node agent server: Config needs NodeName, Client and Runtime")
	}
	if cfg.Addr == "" {
		cfg.Addr = fmt.Sprintf(":%d", DefaultPort)
	}
	pair, err := servingCert(cfg)
	if err != nil {
		return nil, err
	}
	authn := newAuthenticator(cfg.Client)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if cfg.ClientCAFile != "" {
		if authn.clientCAs, err = cert.NewPool(cfg.ClientCAFile); err != nil {
			return nil, fmt.Errorf("loading the client CA (--client-ca-file): %w", err)
		}
		// Requested, not required, and verified by the authenticator, as
		// the apiserver does: a caller with a token sends no certificate,
		// and one from another CA gets a 401 that says so. ClientCAs
		// tells clients which of their certificates to send.
		tlsConfig.ClientAuth, tlsConfig.ClientCAs = tls.RequestClientCert, authn.clientCAs
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("node agent server: listening on %s: %w (pass another --port)", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, ln: ln, authn: authn}
	s.srv = &http.Server{
		Handler:           s.routes(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
	}
	return s, nil
}

// servingCert loads the configured pair, or makes a self-signed one.
func servingCert(cfg Config) (tls.Certificate, error) {
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("loading the serving certificate (--tls-cert-file %q, --tls-private-key-file %q): %w", cfg.CertFile, cfg.KeyFile, err)
		}
		return pair, nil
	}
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(cfg.NodeName, nil, nil)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("making a self-signed serving certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// Addr is the address the server listens on, with the port it got when
// Config.Addr asked for port 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Start serves until ctx ends, then lets requests in flight finish for a
// few seconds; follows and exec sessions are cut then.
func (s *Server) Start(ctx context.Context) error {
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ServeTLS(s.ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("node agent server on %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdown); err != nil {
		_ = s.srv.Close()
	}
	return nil
}

// NeedLeaderElection is false: every node agent serves its own node.
func (s *Server) NeedLeaderElection() bool { return false }

// routes are the kubelet's paths that skiff serves.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /containerLogs/{namespace}/{pod}/{container}", s.guard("log", "get", s.serveLogs))
	mux.Handle("/exec/{namespace}/{pod}/{container}", s.guard("proxy", "create", s.serveExec))
	mux.Handle("GET /stats/summary", s.nodeGuard("stats", "get", s.serveSummary))
	return mux
}

// podHandler serves a request about a container of a pod on this node.
type podHandler func(w http.ResponseWriter, r *http.Request, pod *skiffcorev1.Pod, container string)

// guard authenticates and authorizes a request, as the kubelet does for
// nodes/<subresource>, and finds its pod on this node before serving it.
func (s *Server) guard(subresource, verb string, serve podHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := s.admit(r, subresource, verb); err != nil {
			writeError(w, err)
			return
		}
		pod, err := s.boundPod(ctx, r.PathValue("namespace"), r.PathValue("pod"))
		if err != nil {
			writeError(w, err)
			return
		}
		serve(w, r, pod, r.PathValue("container"))
	})
}

// nodeGuard authenticates and authorizes a request about the node itself,
// as the kubelet does for nodes/<subresource>, before serving it.
func (s *Server) nodeGuard(subresource, verb string, serve http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.admit(r, subresource, verb); err != nil {
			writeError(w, err)
			return
		}
		serve(w, r)
	})
}

// admit authenticates a request's caller and authorizes it to verb
// nodes/<subresource> of this node.
func (s *Server) admit(r *http.Request, subresource, verb string) error {
	user, err := s.authn.authenticate(r.Context(), r)
	if err != nil {
		return err
	}
	return s.authorize(r.Context(), user, subresource, verb)
}

// boundPod gets the pod, which must be bound to this node.
func (s *Server) boundPod(ctx context.Context, namespace, name string) (*skiffcorev1.Pod, error) {
	pod := &skiffcorev1.Pod{}
	if err := s.cfg.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, httpError{http.StatusNotFound, fmt.Sprintf("pod %s/%s not found", namespace, name)}
		}
		return nil, httpError{http.StatusInternalServerError, fmt.Sprintf("getting pod %s/%s: %v", namespace, name, err)}
	}
	if pod.Spec.NodeName != s.cfg.NodeName {
		return nil, httpError{http.StatusNotFound, fmt.Sprintf("pod %s/%s is not on node %s (it is on %q): ask its own node", namespace, name, s.cfg.NodeName, pod.Spec.NodeName)}
	}
	return pod, nil
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

// writeError answers with err's status (500 unless it is an httpError)
// and its text.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he httpError
	if errors.As(err, &he) {
		code = he.code
	}
	http.Error(w, err.Error(), code)
}
