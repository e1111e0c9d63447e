// Package network tests skiff's networking end to end on a real cluster of
// three nodes on this machine: `make up`'s program (hack/up) with
// --nodes=3 runs etcd, kube-apiserver, the manager, one containerd and a
// node agent per node, each in its own network namespace. The tests create
// pods, Deployments and Services through the apiserver and act from inside
// the pods' containers (ctr task exec), as a user of the cluster would.
//
// One cluster serves the whole package: the first test that needs it
// starts it (so that running only the unit tests here starts none), with
// private ports, bridges and ranges so that it never clashes with a user's
// `make up` or with hack/up's own test, and TestMain stops it at the end,
// checking that nothing of it is left on the machine. It needs root, containerd,
// runc, the CNI plugins, nft, ip, nsenter and the test images (`make
// images`); under CI=true a missing one fails every test.
package network

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"skiff.dev/skiff/internal/uptest"
)

// cl is the package's cluster, nil when it could not start (clErr says why).
var (
	clOnce sync.Once
	cl     *cluster
	clErr  error
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	os.Exit(runSuite(m))
}

// runSuite runs the tests and stops the cluster if one started; a cluster
// that does not stop cleanly fails the suite.
func runSuite(m *testing.M) int {
	code := m.Run()
	if cl != nil {
		if err := cl.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "test/e2e/network: stopping the cluster:", err)
			code = 1
		}
	}
	return code
}

// requireCluster returns the package's cluster, starting it for the first
// test that asks; a test stops here, saying why, when the machine cannot
// run one (failing under CI=true) or when it did not start.
func requireCluster(t *testing.T) *cluster {
	t.Helper()
	uptest.RequireMachine(t)
	clOnce.Do(func() {
		t.Log("starting a 3-node cluster for the package (one time)")
		cl, clErr = startCluster()
	})
	if cl == nil {
		t.Fatalf("the cluster did not start: %v", clErr)
	}
	if cl.Run.Exited() {
		t.Fatalf("up has exited, the cluster is gone (a child died?); up's output:\n%s", cl.Run.Output())
	}
	return cl
}
