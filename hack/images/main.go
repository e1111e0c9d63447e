// Command images builds skiff's offline test images without Docker or a
// registry, from the host's busybox-static and small static Go programs
// (./echo, ./memhog), as OCI image-layout tarballs that containerd imports:
//
//	go run ./hack/images -out bin/images
//
// and, with -load, imports them into a running containerd, as the node's:
//
//	go run ./hack/images -out bin/images -load -address /run/skiff/containerd.sock
//
// The output is deterministic: the same inputs give the same digests, and a
// tarball whose content is unchanged is not rewritten.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"

	"skiff.dev/skiff/nodeagent/images"
)

func main() {
	log.SetFlags(0)
	out := flag.String("out", "bin/images", "directory for the tarballs")
	busybox := flag.String("busybox", "/bin/busybox", "the static busybox to put in the images")
	load := flag.Bool("load", false, "import the tarballs into the containerd at -address")
	address := flag.String("address", "", "containerd's socket, for -load")
	namespace := flag.String("namespace", "skiff", "containerd namespace to import into, for -load")
	flag.Parse()
	if *load && *address == "" {
		log.Fatal("images: -load needs -address, the containerd socket")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := build(ctx, *out, *busybox); err != nil {
		log.Fatalf("images: %v", err)
	}
	if !*load {
		return
	}
	if err := loadAll(ctx, *address, *namespace, *out); err != nil {
		log.Fatalf("images: %v", err)
	}
}

// build writes every image of the catalog to dir as <name>.tar and returns
// their paths.
func build(ctx context.Context, dir, busybox string) ([]string, error) {
	in, err := readInputs(ctx, busybox, []string{"echo", "memhog"})
	if err != nil {
		return nil, err
	}
	imgs, err := catalog(in)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for _, img := range imgs {
		data, err := layoutTar(img)
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, tarballName(img.name))
		wrote, err := writeIfChanged(p, data)
		if err != nil {
			return nil, err
		}
		if wrote {
			log.Printf("images: wrote %s (%s)", p, img.name)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// tarballName is the file of an image: its repository's last part, as
// busybox.tar for skiff.dev/test/busybox:v1.
func tarballName(ref string) string {
	repo := strings.TrimSuffix(ref, ":"+tag(ref))
	return path.Base(repo) + ".tar"
}

// writeIfChanged replaces p with data through a rename, unless p already
// holds it, so that an unchanged image keeps its file's time and make sees
// nothing new.
func writeIfChanged(p string, data []byte) (bool, error) {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	// A temporary file of its own, since tests of several packages may
	// build at once into bin/images.
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".*.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(f.Name()) // gone after the rename; removes a failed write
	if _, err := f.Write(data); err != nil {
		f.Close()
		return false, err
	}
	if err := f.Close(); err != nil {
		return false, err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(f.Name(), p)
}

// loadAll imports the tarballs in dir into the containerd at address.
func loadAll(ctx context.Context, address, namespace, dir string) error {
	if _, err := os.Stat(address); err != nil {
		return fmt.Errorf("no containerd socket at %s: start the node's containerd (make up does) or pass its -address: %w", address, err)
	}
	client, err := containerd.New(address)
	if err != nil {
		return fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	defer client.Close()
	names, err := images.ImportDir(namespaces.WithNamespace(ctx, namespace), client, dir)
	if err != nil {
		return err
	}
	log.Printf("images: loaded %s into containerd namespace %s", strings.Join(names, ", "), namespace)
	return nil
}
