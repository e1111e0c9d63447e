package images

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd"
)

// skiff's offline test images, which `make images` (hack/images) builds
// from busybox-static and static Go programs; no registry has them. Pod
// specs in tests and examples name them through these constants.
const (
	// Busybox is busybox with its applets in /bin; its command is sh.
	Busybox = "skiff.dev/test/busybox:v1"
	// Echo answers HTTP GET / on 8080 with its pod's name, serves the gRPC
	// health protocol on 9090, and can fail /healthz or stop late on
	// demand (see hack/images/echo).
	Echo = "skiff.dev/test/echo:v1"
	// Memhog takes -mb megabytes, to be OOM-killed under a memory limit.
	Memhog = "skiff.dev/test/memhog:v1"
)

// testImagePrefix starts the names of the test images, for which a failed
// pull adds how to load them, since no registry will ever have them.
const testImagePrefix = "skiff.dev/test/"

// withLoadHint adds to msg, for a test image, how to get it onto the node.
func withLoadHint(image, msg string) string {
	if !strings.HasPrefix(image, testImagePrefix) {
		return msg
	}
	return msg + ` (skiff's test images are in no registry: build and load them with "go run ./hack/images -load -address <the node's containerd socket>")`
}

// TestImagesDir is where `make images` writes the test images, relative
// to the module's root.
const TestImagesDir = "bin/images"

// BuildTestImages builds the test images into repoRoot's bin/images, as
// `make images` does, and returns that directory. A rebuild is quick and
// rewrites nothing when nothing changed, so tests may call it freely, with
// the root that testenv.RepoRoot finds; it needs the go command.
func BuildTestImages(ctx context.Context, repoRoot string) (string, error) {
	dir := filepath.Join(repoRoot, TestImagesDir)
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/images", "-out", dir)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test images (go run ./hack/images in %s): %w\n%s", repoRoot, err, out)
	}
	return dir, nil
}

// ImportDir imports every image tarball (*.tar) in dir, as `make images`
// leaves them in bin/images, and returns the images' names.
func ImportDir(ctx context.Context, client *containerd.Client, dir string) ([]string, error) {
	tarballs, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return nil, err
	}
	if len(tarballs) == 0 {
		return nil, fmt.Errorf("no image tarballs in %s: build them with `make images`", dir)
	}
	var names []string
	for _, t := range tarballs {
		n, err := Import(ctx, client, t)
		if err != nil {
			return nil, err
		}
		names = append(names, n...)
	}
	return names, nil
}
