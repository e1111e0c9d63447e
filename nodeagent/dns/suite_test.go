package dns_test

import (
	"os"
	"testing"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"skiff.dev/skiff/internal/testenv"
)

// env is the suite's control plane, shared by every test in the package.
var env *testenv.Env

func TestMain(m *testing.M) {
	// Errors only: a failing test shows what the server could not read.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	testenv.RunSuite(m, "nodeagent/dns", &env)
}
