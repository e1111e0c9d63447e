package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAssetsDirNamesWhatIsMissing(t *testing.T) {
	cases := []struct {
		name    string
		present []string
		wantErr string
	}{
		{"all present", []string{"kube-apiserver", "etcd", "kubectl"}, ""},
		{"no apiserver", []string{"etcd", "kubectl"}, "kube-apiserver is missing"},
		{"no kubectl", []string{"kube-apiserver", "etcd"}, "kubectl is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, bin := range tc.present {
				if err := os.WriteFile(filepath.Join(dir, bin), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("KUBEBUILDER_ASSETS", dir)
			got, err := assetsDir("/nowhere")
			switch {
			case tc.wantErr == "" && (err != nil || got != dir):
				t.Fatalf("assetsDir = %q, %v; want %q", got, err, dir)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "make envtest-assets")):
				t.Fatalf("error %v; want one that says %q and how to fix it", err, tc.wantErr)
			}
		})
	}
}

// BenchmarkStart measures how long a suite waits for its control plane:
// kube-apiserver and etcd started, and skiff's ten CRDs installed.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		env, err := Start()
		if err != nil {
			b.Fatal(err)
		}
		if err := env.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}
