package nodeagent_test

import (
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/simulated"
)

// env is the suite's control plane, shared by every test in the package.
var env *testenv.Env

func TestMain(m *testing.M) {
	// Errors only: a failing test shows what the agent refused to do.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	testenv.RunSuite(m, "nodeagent", &env)
}

// simNode describes a simulated node as cmd/nodeagent does.
func simNode(name, ip string) nodeagent.NodeConfig {
	return nodeagent.NodeConfig{
		Name: name, InstanceType: "simulated", InternalIP: ip,
		OSImage: "Skiff Test Linux", KernelVersion: "6.1.0-test",
		Capacity: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("8"),
			corev1.ResourceMemory: resource.MustParse("32Gi"),
			corev1.ResourcePods:   resource.MustParse("110"),
		},
	}
}

// hostOptions are a test host's options: fast heartbeats and a simulated
// runtime with a short timetable.
func hostOptions(sim simulated.Options, nodes ...nodeagent.NodeConfig) nodeagent.Options {
	return nodeagent.Options{
		Nodes:                 nodes,
		NewRuntime:            func(string) nodeagent.Runtime { return simulated.New(sim) },
		LeaseRenewInterval:    300 * time.Millisecond,
		StatusUpdateFrequency: time.Second,
	}
}

// startHost runs a host until the test ends; the returned stop ends it
// early and waits for it, as when the agent's process exits.
func startHost(t *testing.T, opts nodeagent.Options) (*nodeagent.Host, func()) {
	t.Helper()
	host, err := nodeagent.NewHost(env.FastConfig(), opts)
	if err != nil {
		t.Fatalf("creating the host: %v", err)
	}
	stop := testenv.Run(t, "the host", host.Start)
	return host, stop
}
