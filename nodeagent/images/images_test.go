package images_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/uptest"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"

	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

// testImagesDir builds the test images once for the package, into the
// module's bin/images as `make images` does.
var testImagesDir = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	return images.BuildTestImages(ctx, root)
})

func testImages(t *testing.T) string {
	t.Helper()
	hosttest.RequireCommand(t, "go")
	hosttest.RequireFile(t, "/bin/busybox")
	dir, err := testImagesDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// node is a private containerd with the test images imported into
// skiff's namespace.
type node struct {
	client *containerd.Client
	ctx    context.Context
	names  []string // what ImportDir returned
}

func startNode(t *testing.T) *node {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	hosttest.RequireCommand(t, "runc")
	dir := testImages(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	d, err := skiffcontainerd.StartDaemon(ctx, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stopping containerd: %v", err)
		}
	})
	client, err := containerd.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	n := &node{client: client, ctx: namespaces.WithNamespace(ctx, "skiff")}
	if n.names, err = images.ImportDir(n.ctx, client, dir); err != nil {
		t.Fatal(err)
	}
	return n
}

// run starts a container of image and returns its task, the channel of its
// exit and a function that reads its output so far, which the shim writes
// to a file, as the runtime's container logs are. The container, task and snapshot are removed when
// the test ends, whatever happened.
func (n *node) run(t *testing.T, id, image string, specOpts ...oci.SpecOpts) (containerd.Task, <-chan containerd.ExitStatus, func() string) {
	t.Helper()
	img, err := n.client.GetImage(n.ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.client.NewContainer(n.ctx, id,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(id+"-rootfs", img),
		containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, specOpts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.WithoutCancel(n.ctx), containerd.WithSnapshotCleanup); err != nil {
			t.Errorf("deleting container %s: %v", id, err)
		}
	})
	logPath := filepath.Join(t.TempDir(), id+".log")
	out := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	task, err := c.NewTask(n.ctx, cio.LogFile(logPath))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := task.Delete(context.WithoutCancel(n.ctx), containerd.WithProcessKill); err != nil {
			t.Errorf("deleting task %s: %v", id, err)
		}
	})
	exit, err := task.Wait(n.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(n.ctx); err != nil {
		t.Fatal(err)
	}
	return task, exit, out
}

// The three tarballs import under their names and are unpacked, so that a
// container can be created at once.
func TestImportNamesAndUnpacks(t *testing.T) {
	n := startNode(t)
	slices.Sort(n.names)
	if want := []string{images.Busybox, images.Echo, images.Memhog}; !slices.Equal(n.names, want) {
		t.Fatalf("imported %v, want %v", n.names, want)
	}
	for _, name := range n.names {
		img, err := n.client.GetImage(n.ctx, name)
		if err != nil {
			t.Fatalf("%s after import: %v", name, err)
		}
		if ok, err := img.IsUnpacked(n.ctx, ""); err != nil || !ok {
			t.Errorf("%s: unpacked = %v (%v), want true", name, ok, err)
		}
	}
	// Importing again is harmless: the runtime and `make up` may both load.
	if _, err := images.Import(n.ctx, n.client, filepath.Join(testImages(t), "busybox.tar")); err != nil {
		t.Errorf("importing a second time: %v", err)
	}
	if _, err := images.Import(n.ctx, n.client, filepath.Join(t.TempDir(), "missing.tar")); err == nil || !strings.Contains(err.Error(), "make images") {
		t.Errorf("importing a missing tarball: err = %v, want one that says to run make images", err)
	}
}

// The images run under real runc: busybox's shell, echo's servers (HTTP
// and gRPC health, with the failing health check and the slow stop that
// probe and termination tests use) and memhog's OOM kill.
func TestImagesRun(t *testing.T) {
	n := startNode(t)

	t.Run("busybox echoes", func(t *testing.T) {
		_, exit, out := n.run(t, "busybox-echo", images.Busybox, oci.WithProcessArgs("echo", "hi"))
		st := <-exit
		if st.ExitCode() != 0 || !waitFor(func() bool { return out() == "hi\n" }) {
			t.Errorf("echo hi: exit %d, output %q, want 0 and %q", st.ExitCode(), out(), "hi\n")
		}
	})

	t.Run("echo serves HTTP and gRPC health and stops late", func(t *testing.T) {
		httpPort, grpcPort := freePort(t), freePort(t)
		task, exit, out := n.run(t, "echo-server", images.Echo,
			oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithEnv([]string{"POD_NAME=web-0", "PORT=" + httpPort, "GRPC_PORT=" + grpcPort, "FAIL_HEALTHZ_AFTER=3s", "TERM_DELAY=1s"}))
		base := "http://127.0.0.1:" + httpPort
		if !waitFor(func() bool { status, _ := statusAndBody(base + "/"); return status == http.StatusOK }) {
			t.Fatalf("echo did not answer on %s; output:\n%s", base, out())
		}
		for path, want := range map[string]string{"/": "web-0\n", "/healthz": "ok\n"} {
			if status, body := statusAndBody(base + path); status != http.StatusOK || body != want {
				t.Errorf("GET %s = %d %q, want 200 %q", path, status, body, want)
			}
		}
		if _, body := statusAndBody(base + "/env"); !strings.Contains(body, "POD_NAME=web-0\n") {
			t.Errorf("GET /env = %q, want POD_NAME=web-0 in it", body)
		}
		conn, err := grpc.NewClient("127.0.0.1:"+grpcPort, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(n.ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("gRPC health check = %v (%v), want SERVING", resp.GetStatus(), err)
		}
		if !waitFor(func() bool {
			status, _ := statusAndBody(base + "/healthz")
			return status == http.StatusInternalServerError
		}) {
			t.Errorf("/healthz still healthy after FAIL_HEALTHZ_AFTER=3s")
		}

		stopped := time.Now()
		if err := task.Kill(n.ctx, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		st := <-exit
		if took := time.Since(stopped); st.ExitCode() != 0 || took < time.Second {
			t.Errorf("after SIGTERM: exit %d after %s, want 0 after TERM_DELAY=1s", st.ExitCode(), took)
		}
	})

	t.Run("memhog is OOM-killed over its limit", func(t *testing.T) {
		_, exit, out := n.run(t, "memhog", images.Memhog,
			oci.WithProcessArgs("/memhog", "-mb", "200", "-interval", "1ms"),
			oci.WithMemoryLimit(32<<20))
		select {
		case st := <-exit:
			if st.ExitCode() != 128+uint32(syscall.SIGKILL) || !strings.Contains(out(), "memhog: holding 10 MiB") {
				t.Errorf("memhog under a 32 MiB limit: exit %d, want 137 (killed) after it took memory; output:\n%s", st.ExitCode(), out())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("memhog under a 32 MiB limit still runs after 30s; output:\n%s", out())
		}
	})
}

// Ensure follows imagePullPolicy with containerd's real image store; the
// registry is a resolver that counts the pulls it is asked for and has
// nothing, since none can be reached here.
func TestEnsureFollowsPullPolicy(t *testing.T) {
	n := startNode(t)
	for _, c := range []struct {
		name       string
		image      string
		policy     corev1.PullPolicy
		wantReason error // nil: the image is returned
		wantMsg    string
		wantPulls  int
	}{
		{"Never, missing", "skiff.dev/test/missing:1.0", corev1.PullNever, images.ErrImageNeverPull,
			`Container image "skiff.dev/test/missing:1.0" is not present with pull policy of Never (skiff's test images are in no registry: build and load them with "go run ./hack/images -load -address <the node's containerd socket>")`, 0},
		{"Never, present", images.Busybox, corev1.PullNever, nil, "", 0},
		{"IfNotPresent, present", images.Busybox, corev1.PullIfNotPresent, nil, "", 0},
		{"default for tag 1.0 is IfNotPresent", images.Echo, "", nil, "", 0},
		{"IfNotPresent, missing", "skiff.dev/test/missing:1.0", corev1.PullIfNotPresent, images.ErrImagePull,
			`failed to pull and unpack image "skiff.dev/test/missing:1.0": failed to resolve reference "skiff.dev/test/missing:1.0": no registry in this test (skiff's test images are in no registry: build and load them with "go run ./hack/images -load -address <the node's containerd socket>")`, 1},
		{"Always pulls even when present", images.Busybox, corev1.PullAlways, images.ErrImagePull, "", 1},
		{"default for no tag is Always", "skiff.dev/test/busybox", "", images.ErrImagePull, "", 1},
		{"bad name", "Busybox:1", corev1.PullIfNotPresent, images.ErrInvalidImageName, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := &noRegistry{}
			img, err := images.Ensure(n.ctx, n.client, c.image, c.policy, containerd.WithResolver(reg))
			if c.wantReason == nil {
				if err != nil || img == nil {
					t.Fatalf("Ensure = %v, %v; want the image", img, err)
				}
			} else {
				var pe *images.PullError
				if !errors.Is(err, c.wantReason) || !errors.As(err, &pe) {
					t.Fatalf("Ensure err = %v, want a *PullError %v", err, c.wantReason)
				}
				if c.wantMsg != "" && pe.Message != c.wantMsg {
					t.Errorf("message = %q, want %q", pe.Message, c.wantMsg)
				}
			}
			if got := reg.count(); got != c.wantPulls {
				t.Errorf("registry asked %d times, want %d", got, c.wantPulls)
			}
		})
	}
}

// With the real resolver, a registry that cannot be reached (a closed port
// on loopback) fails the pull with ErrImagePull in seconds, not minutes.
func TestEnsureFailsFastWithoutRegistry(t *testing.T) {
	n := startNode(t)
	start := time.Now()
	_, err := images.Ensure(n.ctx, n.client, "localhost:1/nothing:1", corev1.PullIfNotPresent)
	if !errors.Is(err, images.ErrImagePull) || !strings.Contains(err.Error(), `"localhost:1/nothing:1"`) {
		t.Fatalf("Ensure err = %v, want ErrImagePull naming the image", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the pull failed after %s, want under 5s (the dial timeout)", took)
	}
}

// PullBackOff refuses pulls within the back-off without asking the
// registry, per pod, and lets the next one through when it ends.
func TestPullBackOff(t *testing.T) {
	n := startNode(t)
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := images.NewPullBackOff(clk)
	reg := &noRegistry{}
	const missing = "skiff.dev/test/missing:1.0"
	ensure := func(pod string) error {
		_, err := b.Ensure(n.ctx, n.client, types.UID("uid-"+pod), missing, corev1.PullIfNotPresent, containerd.WithResolver(reg))
		return err
	}

	if err := ensure("a"); !errors.Is(err, images.ErrImagePull) {
		t.Fatalf("first pull: %v, want ErrImagePull", err)
	}
	if got, want := b.RetryAt("uid-a", missing), clk.Now().Add(10*time.Second); !got.Equal(want) {
		t.Errorf("RetryAt = %s, want %s", got, want)
	}
	err := ensure("a")
	var pe *images.PullError
	if !errors.Is(err, images.ErrImagePullBackOff) || !errors.As(err, &pe) || pe.Message != `Back-off pulling image "skiff.dev/test/missing:1.0"` {
		t.Fatalf("pull within back-off: %v, want ImagePullBackOff", err)
	}
	if reg.count() != 1 {
		t.Errorf("registry asked %d times, want 1: the back-off must not reach it", reg.count())
	}
	if err := ensure("b"); !errors.Is(err, images.ErrImagePull) {
		t.Errorf("another pod's pull: %v, want ErrImagePull: back-off is per pod", err)
	}

	clk.Step(10 * time.Second)
	if err := ensure("a"); !errors.Is(err, images.ErrImagePull) {
		t.Fatalf("pull after the back-off: %v, want ErrImagePull", err)
	}
	if got, want := b.RetryAt("uid-a", missing), clk.Now().Add(20*time.Second); !got.Equal(want) {
		t.Errorf("RetryAt after a second failure = %s, want %s (doubled)", got, want)
	}
	if reg.count() != 3 {
		t.Errorf("registry asked %d times, want 3", reg.count())
	}

	// A pod whose image turns up (here: one that is present) is forgotten.
	if _, err := b.Ensure(n.ctx, n.client, "uid-a", images.Busybox, corev1.PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	if !b.RetryAt("uid-a", images.Busybox).IsZero() {
		t.Errorf("a present image is in back-off")
	}
}

// noRegistry stands for a registry that holds nothing: it counts the
// resolutions containerd asks of it and fails each.
type noRegistry struct {
	mu       sync.Mutex
	resolves int
}

func (r *noRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resolves
}

func (r *noRegistry) Resolve(context.Context, string) (string, ocispec.Descriptor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolves++
	return "", ocispec.Descriptor{}, errors.New("no registry in this test")
}

func (r *noRegistry) Fetcher(context.Context, string) (remotes.Fetcher, error) {
	return nil, errors.New("no registry in this test")
}

func (r *noRegistry) Pusher(context.Context, string) (remotes.Pusher, error) {
	return nil, errors.New("no registry in this test")
}

// freePort is a TCP port free on loopback, reserved for this test process.
func freePort(t *testing.T) string {
	t.Helper()
	ports, err := uptest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(ports[0])
}

// statusAndBody is the answer to GET url; status 0 when there was none.
func statusAndBody(url string) (status int, body string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond for up to 10 seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
