package config_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/testenv"
)

// TestLocalClusterRefusesUpstreamCoreKinds applies config/local, as `make up`
// does, and checks that a built-in v1 Pod is refused with a message that
// says how to convert it, while skiff's own Pod is accepted.
func TestLocalClusterRefusesUpstreamCoreKinds(t *testing.T) {
	if out, err := env.Kubectl("apply", "-k", filepath.Join(env.Root, "config", "local")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer func() {
		// --wait=false: no namespace controller runs here, so the
		// skiff-system Namespace would stay Terminating for ever.
		_, _ = env.Kubectl("delete", "--ignore-not-found", "--wait=false", "-k", filepath.Join(env.Root, "config", "local"))
	}()
	dir := t.TempDir()
	upstream := writeFile(t, dir, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: upstream}\nspec: {containers: [{name: c, image: x}]}\n")
	skiff := writeFile(t, dir, "skiff-pod.yaml", "apiVersion: core.skiff.dev/v1\nkind: Pod\nmetadata: {name: converted}\nspec: {containers: [{name: c, image: x}]}\n")

	// The policy takes effect once the apiserver has loaded it.
	testenv.Eventually(t, 30*time.Second, func() error {
		out, err := env.Kubectl("apply", "--dry-run=server", "-f", upstream)
		if err == nil {
			return fmt.Errorf("a v1 Pod was accepted: %s", out)
		}
		if !strings.Contains(err.Error(), "change its apiVersion from v1 to core.skiff.dev/v1") {
			return fmt.Errorf("refused, but without saying how to convert: %v", err)
		}
		return nil
	})
	if out, err := env.Kubectl("apply", "--dry-run=server", "-f", skiff); err != nil {
		t.Fatalf("a core.skiff.dev/v1 Pod was refused: %v\n%s", err, out)
	}
}
