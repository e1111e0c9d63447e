package kubectlskiff

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func run(args ...string) (stdout, stderr string, err error) {
	streams, _, out, errOut := genericiooptions.NewTestIOStreams()
	cmd := NewRootCommand(streams)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// TestRoot checks the plugin's face: help names it "kubectl skiff" and
// lists every command with kubectl's connection flags, and version works
// offline with --client.
func TestRoot(t *testing.T) {
	cases := []struct {
		args []string
		want []string
		err  string
	}{
		{[]string{"--help"}, []string{"kubectl skiff [command]", "rollout", "cordon", "uncordon", "drain", "describe", "logs", "exec", "top", "convert", "version",
			"--kubeconfig", "--context", "-n, --namespace", "-A, --all-namespaces"}, ""},
		{[]string{"rollout", "--help"}, []string{"kubectl skiff rollout", "status", "history", "undo", "pause", "resume", "restart"}, ""},
		{[]string{"top", "--help"}, []string{"kubectl skiff top", "node", "pod"}, ""},
		{[]string{"top", "pod", "--sort-by=name"}, nil, "--sort-by accepts only cpu or memory"},
		{[]string{"version", "--client"}, []string{"Client Version: "}, ""},
		{[]string{"rollout", "status"}, nil, "required resource not specified"},
		{[]string{"rollout", "history", "deploy/web", "-A"}, nil, "use -n NAMESPACE, not -A"},
		{[]string{"frobnicate"}, nil, `unknown command "frobnicate" for "kubectl skiff"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, _, err := run(c.args...)
			if c.err == "" && err != nil {
				t.Fatal(err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err = %v, want one containing %q", err, c.err)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
