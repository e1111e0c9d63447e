package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConvertedManifestsApply applies every golden output with the real
// kubectl, whose field validation is strict: the output of convert is
// accepted as it is, which is the point of `convert -f app.yaml | kubectl
// apply -f -`.
func TestConvertedManifestsApply(t *testing.T) {
	outputs, err := filepath.Glob(filepath.Join("testdata", "*.out.yaml"))
	if err != nil || len(outputs) == 0 {
		t.Fatalf("no golden outputs in testdata: %v", err)
	}
	for _, file := range outputs {
		t.Run(filepath.Base(file), func(t *testing.T) {
			out, err := env.Kubectl("apply", "--validate=strict", "-f", file)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "created") && !strings.Contains(out, "configured") {
				t.Errorf("kubectl apply printed %q", out)
			}
		})
	}
}

// TestUnprunedManifestIsRefused shows why convert drops what it reports:
// the apiserver refuses a skiff manifest with a field its schema lacks
// when kubectl validates strictly, as it does by default.
func TestUnprunedManifestIsRefused(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "pod.yaml")
	data := "apiVersion: core.skiff.dev/v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers: [{name: a, image: b, imagePullPolice: Always}]\n"
	if err := os.WriteFile(manifest, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := env.Kubectl("apply", "-f", manifest)
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.containers[0].imagePullPolice"`) {
		t.Errorf("kubectl apply of an unpruned manifest: %v\n%s", err, out)
	}
}
