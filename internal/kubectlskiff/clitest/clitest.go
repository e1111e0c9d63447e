// Package clitest runs `kubectl skiff` in process for tests, against a test
// cluster, capturing what it writes.
package clitest

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"skiff.dev/skiff/internal/kubectlskiff"
	"skiff.dev/skiff/internal/testenv"
)

// Plugin is `kubectl skiff` pointed at one test cluster and namespace.
type Plugin struct {
	Kubeconfig string
	Namespace  string
}

// New writes an admin kubeconfig for env's cluster and returns the plugin
// aimed at it, in namespace ns.
func New(t testing.TB, env *testenv.Env, ns string) Plugin {
	t.Helper()
	kubeconfig, err := env.WriteAdminKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return Plugin{Kubeconfig: kubeconfig, Namespace: ns}
}

// Run runs `kubectl skiff ARGS` and returns what it wrote to stdout and
// stderr, and its error (which main prints as "error: ..." with exit
// code 1).
func (p Plugin) Run(args ...string) (stdout, stderr string, err error) {
	return p.RunWithInput("", args...)
}

// RunWithInput is Run with input as the plugin's standard input.
func (p Plugin) RunWithInput(input string, args ...string) (stdout, stderr string, err error) {
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(input)
	cmd := kubectlskiff.NewRootCommand(streams)
	cmd.SetArgs(append([]string{"--kubeconfig", p.Kubeconfig, "-n", p.Namespace}, args...))
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// MustRun is Run for a command that must succeed; it returns stdout.
func (p Plugin) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := p.Run(args...)
	if err != nil {
		t.Fatalf("kubectl skiff %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}
