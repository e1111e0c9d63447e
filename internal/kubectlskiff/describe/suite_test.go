package describe_test

import (
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// env is the suite's control plane, shared by every test in the package.
var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.RunSuite(m, "describe", &env)
}
