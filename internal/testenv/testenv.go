// Package testenv starts the one kind of test cluster that every skiff suite
// uses: a real kube-apiserver and etcd, built into bin/ by `make test`, with
// skiff's CRDs installed from config/crd/bases.
package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"skiff.dev/skiff/api"
)

// Env is a running test control plane.
type Env struct {
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Root is the repository root, for suites that read config/ or testdata.
	Root string

	env *envtest.Environment
}

// Start starts kube-apiserver and etcd and installs skiff's CRDs. It fails,
// never skips, when the binaries are missing: a suite that cannot run must
// say so in CI.
func Start() (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := assetsDir(root)
	if err != nil {
		return nil, err
	}
	scheme := api.NewScheme()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	cfg, err := env.Start()
	if err != nil {
		// envtest leaves its processes running when a step after their start
		// fails (a CRD the apiserver refuses, say); stop them here.
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest with binaries from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, Root: root, env: env}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// Kubectl runs the real kubectl from bin/ against the test cluster and
// returns its standard output, or an error carrying its standard error.
func (e *Env) Kubectl(args ...string) (string, error) {
	k := e.env.ControlPlane.KubeCtl()
	stdout, stderr, err := k.Run(args...)
	out := readAll(stdout)
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, readAll(stderr))
	}
	return out, nil
}

// RepoRoot finds the directory holding skiff's go.mod, from the working
// directory that `go test` gives each package.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module skiff.dev/skiff\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no skiff go.mod above the working directory")
		}
		dir = parent
	}
}

// assetsDir returns where kube-apiserver, etcd and kubectl are: the
// KUBEBUILDER_ASSETS that make sets, or bin/ when a test runs by hand.
func assetsDir(root string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(root, "bin")
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("%s is missing from %s: run `make envtest-assets` (make test does it) to build the control plane", bin, dir)
		}
	}
	return dir, nil
}

// readAll drains a kubectl output stream; envtest hands them back as readers.
func readAll(r io.Reader) string {
	if r == nil {
		return ""
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// Eventually retries check until it succeeds, and fails the test with the
// last error once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WriteAdminKubeconfig writes a kubeconfig for a cluster administrator
// (group system:masters) into dir and returns its path, for the programs a
// suite or benchmark runs as separate processes (bin/manager,
// bin/nodeagent).
func (e *Env) WriteAdminKubeconfig(dir string) (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: "skiff-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding an admin user to the test cluster: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "admin.kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// ClientCAFile is the CA bundle that signs the apiserver's client
// certificates (WriteAdminKubeconfig's), for a server that knows the
// cluster's users by their certificates, as a node agent's
// --client-ca-file.
func (e *Env) ClientCAFile() string {
	if ca := e.env.ControlPlane.APIServer.Configure().Get("client-ca-file").Get(nil); len(ca) == 1 {
		return ca[0]
	}
	return ""
}

// RunSuite is a suite's TestMain: it starts the test cluster into *env,
// runs the package's tests, stops the cluster and exits with the tests'
// code. A cluster that cannot start fails the suite, naming it.
func RunSuite(m *testing.M, suite string, env **Env) {
	var err error
	if *env, err = Start(); err != nil {
		fmt.Fprintf(os.Stderr, "%s suite: %v\n", suite, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := (*env).Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test cluster:", err)
	}
	os.Exit(code)
}
