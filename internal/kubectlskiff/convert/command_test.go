package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestCommand runs `convert` as a user does: from a file or stdin, with
// the converted YAML on stdout, a "warning: " line per dropped field on
// stderr, and an error under --strict.
func TestCommand(t *testing.T) {
	input, err := os.ReadFile(filepath.Join("testdata", "app-with-unsupported-fields.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wantOut, err := os.ReadFile(filepath.Join("testdata", "app-with-unsupported-fields.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", "app-with-unsupported-fields.in.yaml")
	cases := []struct {
		name  string
		args  []string
		stdin string
		err   string
	}{
		{"file", []string{"-f", file}, "", ""},
		{"stdin", []string{"-f", "-"}, string(input), ""},
		{"strict", []string{"-f", file, "--strict"}, "", "3 fields are not supported by skiff (--strict)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			streams, in, out, errOut := genericiooptions.NewTestIOStreams()
			in.WriteString(c.stdin)
			cmd := NewCommand(streams)
			cmd.SetArgs(c.args)
			err := cmd.Execute()
			if c.err == "" && err != nil {
				t.Fatal(err)
			}
			if c.err != "" && (err == nil || err.Error() != c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
			if out.String() != string(wantOut) {
				t.Errorf("stdout:\n%s\nwant\n%s", out, wantOut)
			}
			if got := strings.Count(errOut.String(), "warning: deployment/cart: field spec.template.spec.containers[0]."); got != 2 {
				t.Errorf("stderr has %d warnings for deployment/cart, want 2:\n%s", got, errOut)
			}
		})
	}
	streams, _, _, _ := genericiooptions.NewTestIOStreams()
	cmd := NewCommand(streams)
	cmd.SetArgs([]string{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "kubectl skiff convert -f FILE") {
		t.Errorf("convert without -f: err = %v", err)
	}
}
