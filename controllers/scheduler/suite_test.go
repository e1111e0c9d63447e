package scheduler

import (
	"fmt"
	"os"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// env is the suite's control plane, shared by every test in the package.
var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler suite:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}
