// Package config_test checks skiff's kustomize manifests against a real
// apiserver: what `make deploy` applies and what `make up` adds.
package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.RunSuite(m, "config", &env)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
