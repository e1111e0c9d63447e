package top_test

import (
	"testing"

	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/containerd"
)

// env is the suite's control plane. Its apiserver authorizes with RBAC and
// knows users by client certificates, so the node agent's reviews answer
// as in a real cluster.
var env *testenv.Env

func TestMain(m *testing.M) {
	// The shims run this test binary as the containers' log driver.
	containerd.RunLogDriverIfAsked()
	testenv.RunSuite(m, "top", &env)
}
