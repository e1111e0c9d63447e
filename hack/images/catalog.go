package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/nodeagent/images"
)

// programsPkg is where the images' Go programs live, one per directory.
const programsPkg = "skiff.dev/skiff/hack/images/"

// defaultPath is the PATH of every image, upstream's default.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// inputs are what the images are made of, read from the host.
type inputs struct {
	busybox  []byte   // the static busybox binary
	applets  []string // its applets, each a symlink in /bin
	programs map[string][]byte
}

// catalog is skiff's test images, each busybox plus, for the programs, one
// static binary at the root, so that exec probes (`cat /tmp/healthy`) work
// in every image. The busybox layer is identical in all, so containerd
// stores it once.
func catalog(in inputs) ([]image, error) {
	base, err := buildLayer(busyboxEntries(in))
	if err != nil {
		return nil, err
	}
	imgs := []image{{
		name:   images.Busybox,
		layers: []layer{base},
		config: ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}}
	for _, p := range []struct {
		name, program string
		ports         []string
	}{
		{images.Echo, "echo", []string{"8080/tcp", "8081/udp", "9090/tcp"}},
		{images.Memhog, "memhog", nil},
	} {
		bin, ok := in.programs[p.program]
		if !ok {
			return nil, fmt.Errorf("image %s: program %q was not built", p.name, p.program)
		}
		l, err := buildLayer([]entry{file(p.program, 0o755, bin)})
		if err != nil {
			return nil, err
		}
		cfg := ocispec.ImageConfig{Entrypoint: []string{"/" + p.program}, Env: []string{defaultPath}, WorkingDir: "/"}
		if len(p.ports) > 0 {
			cfg.ExposedPorts = map[string]struct{}{}
			for _, port := range p.ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
		imgs = append(imgs, image{name: p.name, layers: []layer{base, l}, config: cfg})
	}
	return imgs, nil
}

// busyboxEntries is a minimal root: busybox and its applets in /bin, users
// root and nobody (65534) for runAsUser tests, and a world-writable /tmp.
func busyboxEntries(in inputs) []entry {
	entries := []entry{
		dir("bin", 0o755),
		dir("etc", 0o755),
		dir("root", 0o700),
		dir("tmp", 0o1777),
		file("bin/busybox", 0o755, in.busybox),
		file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
		file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")),
	}
	for _, a := range in.applets {
		entries = append(entries, symlink("bin/"+a, "busybox"))
	}
	return entries
}

// readInputs reads busybox from the host and builds the programs, static,
// into a temporary directory.
func readInputs(ctx context.Context, busyboxPath string, programs []string) (inputs, error) {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return inputs{}, fmt.Errorf("reading busybox: install busybox-static (make node-prereqs): %w", err)
	}
	list, err := exec.CommandContext(ctx, busyboxPath, "--list").Output()
	if err != nil {
		return inputs{}, fmt.Errorf("%s --list: %w", busyboxPath, err)
	}
	in := inputs{busybox: bb, applets: applets(string(list)), programs: map[string][]byte{}}

	tmp, err := os.MkdirTemp("", "skiff-images-")
	if err != nil {
		return inputs{}, err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", tmp + "/"}
	for _, p := range programs {
		args = append(args, programsPkg+p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	// Static and for this machine, whatever the caller's environment says.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return inputs{}, fmt.Errorf("go %s (run it inside the skiff module): %w\n%s", strings.Join(args, " "), err, out)
	}
	for _, p := range programs {
		if in.programs[p], err = os.ReadFile(filepath.Join(tmp, p)); err != nil {
			return inputs{}, err
		}
	}
	return in, nil
}

// applets parses `busybox --list`: one name per line. busybox itself is
// the binary, not a link.
func applets(list string) []string {
	var names []string
	for _, n := range strings.Fields(list) {
		if n != "busybox" && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	return names
}
