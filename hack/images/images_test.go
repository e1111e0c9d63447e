package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/hosttest"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

// buildForTest builds the catalog into a fresh directory, from the host's
// busybox and the go command, as `make images` does.
func buildForTest(t *testing.T) (dir string, tarballs []string) {
	t.Helper()
	hosttest.RequireFile(t, "/bin/busybox")
	hosttest.RequireCommand(t, "go")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir = t.TempDir()
	tarballs, err := build(ctx, dir, "/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	return dir, tarballs
}

// The tarballs are OCI image layouts that an importer can trust: every blob
// is what its digest says, the config's diff_ids are the digests of the
// uncompressed layers, the index names the image for containerd, and the
// files and config are what pods of the tests rely on.
func TestBuildWritesValidLayouts(t *testing.T) {
	_, tarballs := buildForTest(t)
	got := map[string]checkedImage{}
	for _, p := range tarballs {
		img := checkLayout(t, p)
		got[img.name] = img
	}
	if len(got) != 3 {
		t.Fatalf("built %d images, want 3: %v", len(got), tarballs)
	}

	bb := got[images.Busybox]
	if !slices.Equal(bb.config.Config.Cmd, []string{"sh"}) || !slices.Contains(bb.config.Config.Env, defaultPath) {
		t.Errorf("busybox config = %+v, want Cmd [sh] and Env %s", bb.config.Config, defaultPath)
	}
	for path, want := range map[string]string{
		"bin/sh":      "symlink busybox",
		"bin/cat":     "symlink busybox",
		"bin/wget":    "symlink busybox",
		"tmp":         "dir 1777",
		"bin/busybox": "file 755",
	} {
		if got := bb.files[path]; got != want {
			t.Errorf("busybox image: %s is %q, want %q", path, got, want)
		}
	}
	if !strings.Contains(bb.passwd, "nobody:x:65534:65534:") || !strings.Contains(bb.passwd, "root:x:0:0:") {
		t.Errorf("busybox image: /etc/passwd lacks root or nobody:\n%s", bb.passwd)
	}

	for name, bin := range map[string]string{images.Echo: "echo", images.Memhog: "memhog"} {
		img := got[name]
		if !slices.Equal(img.config.Config.Entrypoint, []string{"/" + bin}) {
			t.Errorf("%s: entrypoint %v, want [/%s]", name, img.config.Config.Entrypoint, bin)
		}
		if img.files[bin] != "file 755" || img.files["bin/sh"] != "symlink busybox" {
			t.Errorf("%s: /%s is %q and /bin/sh %q, want the program and busybox", name, bin, img.files[bin], img.files["bin/sh"])
		}
		if img.layers[0] != bb.layers[0] {
			t.Errorf("%s: base layer %s differs from busybox's %s: containerd would store busybox twice", name, img.layers[0], bb.layers[0])
		}
	}
	if _, ok := got[images.Echo].config.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("echo image exposes %v, want 8080/tcp", got[images.Echo].config.Config.ExposedPorts)
	}
}

// Rebuilding from the same inputs gives the same bytes, so the same
// digests, and leaves unchanged tarballs alone.
func TestBuildIsDeterministic(t *testing.T) {
	dir, first := buildForTest(t)
	_, second := buildForTest(t)
	before := map[string]time.Time{}
	for i := range first {
		a, err := os.ReadFile(first[i])
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(second[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds: %s vs %s", filepath.Base(first[i]), digest.FromBytes(a), digest.FromBytes(b))
		}
		st, err := os.Stat(first[i])
		if err != nil {
			t.Fatal(err)
		}
		before[first[i]] = st.ModTime()
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := build(context.Background(), dir, "/bin/busybox"); err != nil {
		t.Fatal(err)
	}
	for p, mtime := range before {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(mtime) {
			t.Errorf("%s was rewritten by a build that changed nothing", p)
		}
	}
}

func TestTag(t *testing.T) {
	for _, c := range []struct{ ref, tag, file string }{
		{"skiff.dev/test/busybox:v1", "v1", "busybox.tar"},
		{"localhost:5000/echo", "latest", "echo.tar"},
		{"localhost:5000/x/memhog:v2", "v2", "memhog.tar"},
	} {
		if got := tag(c.ref); got != c.tag {
			t.Errorf("tag(%q) = %q, want %q", c.ref, got, c.tag)
		}
		if got := tarballName(c.ref); got != c.file {
			t.Errorf("tarballName(%q) = %q, want %q", c.ref, got, c.file)
		}
	}
}

func TestApplets(t *testing.T) {
	for _, c := range []struct {
		list string
		want []string
	}{
		{"[\n[[\nbusybox\ncat\nsh\n", []string{"[", "[[", "cat", "sh"}},
		{"", nil},
		{"usr/bin/awk\nls\n", []string{"ls"}},
	} {
		if got := applets(c.list); !slices.Equal(got, c.want) {
			t.Errorf("applets(%q) = %q, want %q", c.list, got, c.want)
		}
	}
}

func TestWriteTarRefusesDuplicates(t *testing.T) {
	err := writeTar(io.Discard, []entry{dir("a", 0o755), file("a", 0o644, nil)})
	if err == nil || !strings.Contains(err.Error(), `"a" twice`) {
		t.Errorf("writeTar with a duplicate path: err = %v, want it refused", err)
	}
}

// checkedImage is what checkLayout found in one tarball.
type checkedImage struct {
	name   string
	config ocispec.Image
	layers []digest.Digest
	files  map[string]string // path -> "file 755", "dir 1777", "symlink busybox"
	passwd string
}

// checkLayout reads an OCI layout tarball the way an importer would and
// fails on anything that does not verify.
func checkLayout(t *testing.T, path string) checkedImage {
	t.Helper()
	blobs := readTar(t, path)
	var layout ocispec.ImageLayout
	decode(t, blobs[ocispec.ImageLayoutFile], &layout)
	if layout.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("%s: oci-layout version %q", path, layout.Version)
	}
	var index ocispec.Index
	decode(t, blobs[ocispec.ImageIndexFile], &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("%s: index has %d manifests, want 1", path, len(index.Manifests))
	}
	top := index.Manifests[0]
	img := checkedImage{name: top.Annotations[containerdImageName], files: map[string]string{}}
	if img.name == "" || top.Annotations[ocispec.AnnotationRefName] != tag(img.name) {
		t.Fatalf("%s: index annotations %v, want the image name and its tag", path, top.Annotations)
	}

	var manifest ocispec.Manifest
	decode(t, verifiedBlob(t, blobs, top), &manifest)
	decode(t, verifiedBlob(t, blobs, manifest.Config), &img.config)
	if img.config.OS != "linux" || img.config.Architecture != hostPlatform().Architecture {
		t.Errorf("%s: platform %s/%s, want the host's", img.name, img.config.OS, img.config.Architecture)
	}
	if len(img.config.RootFS.DiffIDs) != len(manifest.Layers) {
		t.Fatalf("%s: %d diff_ids for %d layers", img.name, len(img.config.RootFS.DiffIDs), len(manifest.Layers))
	}
	for i, l := range manifest.Layers {
		if l.MediaType != ocispec.MediaTypeImageLayerGzip {
			t.Errorf("%s: layer %d media type %s", img.name, i, l.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(verifiedBlob(t, blobs, l)))
		if err != nil {
			t.Fatalf("%s: layer %d: %v", img.name, i, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: layer %d: %v", img.name, i, err)
		}
		if got := digest.FromBytes(raw); got != img.config.RootFS.DiffIDs[i] {
			t.Errorf("%s: layer %d uncompressed is %s, config says %s", img.name, i, got, img.config.RootFS.DiffIDs[i])
		}
		img.layers = append(img.layers, l.Digest)
		listLayer(t, raw, &img)
	}
	return img
}

func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if files[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// verifiedBlob is the blob desc points to, failing unless its size and
// digest match.
func verifiedBlob(t *testing.T, blobs map[string][]byte, desc ocispec.Descriptor) []byte {
	t.Helper()
	data, ok := blobs["blobs/sha256/"+desc.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s is missing", desc.Digest)
	}
	if int64(len(data)) != desc.Size || digest.FromBytes(data) != desc.Digest {
		t.Fatalf("blob %s: size %d and digest %s do not match", desc.Digest, len(data), digest.FromBytes(data))
	}
	return data
}

func listLayer(t *testing.T, raw []byte, img *checkedImage) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", img.name, err)
		}
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: %s has time %s and owner %d:%d, want the fixed epoch and root", img.name, h.Name, h.ModTime, h.Uid, h.Gid)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeReg:
			img.files[name] = "file " + modeString(h.Mode)
			if name == "etc/passwd" {
				b, _ := io.ReadAll(tr)
				img.passwd = string(b)
			}
		case tar.TypeDir:
			img.files[name] = "dir " + modeString(h.Mode)
		case tar.TypeSymlink:
			img.files[name] = "symlink " + h.Linkname
		}
	}
}

func modeString(m int64) string { return strconv.FormatInt(m, 8) }

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %T: %v", v, err)
	}
}

// -load puts every built image into the containerd namespace it names, as
// `make up` needs for the node's containerd.
func TestLoadImportsIntoNamespace(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	dir, _ := buildForTest(t)
	ctx := context.Background()
	d, err := skiffcontainerd.StartDaemon(ctx, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	if err := loadAll(ctx, d.Address, "load-test", dir); err != nil {
		t.Fatal(err)
	}
	client, err := containerd.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	imgs, err := client.ListImages(namespaces.WithNamespace(ctx, "load-test"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range imgs {
		names = append(names, i.Name())
	}
	slices.Sort(names)
	if want := []string{images.Busybox, images.Echo, images.Memhog}; !slices.Equal(names, want) {
		t.Errorf("namespace load-test holds %v, want %v", names, want)
	}
	if err := loadAll(ctx, filepath.Join(t.TempDir(), "none.sock"), "x", dir); err == nil || !strings.Contains(err.Error(), "no containerd socket") {
		t.Errorf("loading into a containerd that is not there: err = %v, want one that says so", err)
	}
}
