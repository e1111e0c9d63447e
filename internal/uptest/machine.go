package uptest

import (
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
)

// RequireMachine stops a test, saying why, when this machine cannot run a
// multi-node cluster: up needs root, containerd, runc, the CNI plugins,
// nft, ip and nsenter, the control plane's binaries in bin/ and the test
// images. Under CI=true a missing one fails the test instead of skipping it.
func RequireMachine(tb testing.TB) {
	tb.Helper()
	hosttest.RequireRoot(tb)
	for _, command := range []string{"go", "containerd", "runc", "ctr", "nft", "ip", "nsenter"} {
		hosttest.RequireCommand(tb, command)
	}
	hosttest.RequireFile(tb, "/usr/lib/cni/bridge")
	root, err := testenv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	for _, bin := range []string{"etcd", "kube-apiserver", "kubectl"} {
		hosttest.Require(tb, exists(filepath.Join(root, "bin", bin)), "bin/"+bin+" (make envtest-assets builds it)")
	}
	hosttest.Require(tb, exists(filepath.Join(root, "bin", "images", "echo.tar")), "bin/images/*.tar (make images builds them)")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
