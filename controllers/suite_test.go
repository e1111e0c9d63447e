package controllers_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/controllers"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/simulated"
)

// The whole control plane against envtest, with simulated nodes: the
// behaviours that need every controller at once.

var env *testenv.Env

// managerKubeconfigEnv, when set, turns the test binary into a bare
// manager process, so that a test can kill a manager for real (SIGKILL)
// and start another.
const managerKubeconfigEnv = "SKIFF_TEST_MANAGER_KUBECONFIG"

func TestMain(m *testing.M) {
	if kubeconfig := os.Getenv(managerKubeconfigEnv); kubeconfig != "" {
		os.Exit(runManagerProcess(kubeconfig))
	}
	testenv.RunSuite(m, "control plane", &env)
}

// testOptions are the controllers' settings in this suite: a node is lost
// after 3s without a heartbeat and its pods go 2s later, instead of upstream's
// 50s and 5 minutes.
func testOptions() controllers.Options {
	o := controllers.Options{}
	o.Scheduler.Scoring = "LeastAllocated"
	o.Scheduler.BindWorkers = 16
	o.NodeLifecycle.NodeMonitorGracePeriod = 3 * time.Second
	o.NodeLifecycle.DefaultTolerationSeconds = 2
	o.NodeIPAM.ClusterCIDR = "10.244.0.0/16"
	o.NodeIPAM.NodeCIDRMaskSize = 24
	return o
}

// startControlPlane runs every controller in this process until the test ends.
func startControlPlane(t *testing.T) (stop func()) {
	return env.StartManager(t, func(mgr ctrl.Manager) error { return controllers.Setup(mgr, testOptions()) })
}

// runManagerProcess is the body of a manager child process: every
// controller with the suite's settings, until SIGTERM or SIGKILL.
func runManagerProcess(kubeconfig string) int {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	ctrl.SetLogger(zap.New())
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 api.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err == nil {
		err = controllers.Setup(mgr, testOptions())
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		err = mgr.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return 0
}

// startNodes runs simulated nodes named prefix-0..n-1 in this process until
// the test ends, each with 4 CPUs, 16Gi and 110 pods, heartbeating every
// 500ms so that the 3s grace period above can tell a lost node.
func startNodes(t *testing.T, prefix string, n int) *nodeagent.Host {
	return env.StartSimulatedNodes(t, testenv.SimulatedNodes{Prefix: prefix, Count: n,
		Runtime: simulated.Options{RunDuration: time.Second}, LeaseRenewInterval: 500 * time.Millisecond})
}
