// Package containertest runs real containers for tests that need them
// without a whole node agent: a private containerd with skiff's busybox
// test image and the containerd runtime on it, its pods in the host's
// network, synced by the test as the agent would sync them.
package containertest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/hosttest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

// StartRuntime runs a private containerd with skiff's busybox image (from
// repoRoot's bin/images) and the containerd runtime on it, and returns the
// image's name as the tarball has it. It needs root, containerd and runc:
// under CI a missing one fails the test. Every pod is killed and removed
// when the test ends.
func StartRuntime(t *testing.T, repoRoot string) (*containerd.Runtime, string) {
	t.Helper()
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	hosttest.RequireCommand(t, "runc")
	tarball := filepath.Join(repoRoot, images.TestImagesDir, "busybox.tar")
	hosttest.RequireFile(t, tarball)
	ctx := context.Background()
	dir := t.TempDir()
	d, err := containerd.StartDaemon(ctx, "", filepath.Join(dir, "containerd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	rt, err := containerd.New(containerd.Config{Address: d.Address, Dir: filepath.Join(dir, "agent")}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	t.Cleanup(func() { removePods(t, rt) })
	names, err := images.Import(namespaces.WithNamespace(ctx, containerd.DefaultNamespace), rt.Client(), tarball)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Fatalf("%s holds images %q, want one: rebuild it with `make images`", tarball, names)
	}
	return rt, names[0]
}

// removePods kills and removes every pod rt runs.
func removePods(t *testing.T, rt *containerd.Runtime) {
	ctx := context.Background()
	pods, err := rt.ListPods(ctx)
	if err != nil {
		t.Errorf("listing pods to clean up: %v", err)
	}
	for _, p := range pods {
		stale := &skiffcorev1.Pod{}
		stale.UID, stale.Namespace, stale.Name = p.UID, p.Namespace, p.Name
		if err := errors.Join(rt.KillPod(ctx, stale, 0), rt.RemovePod(ctx, p.UID)); err != nil {
			t.Errorf("cleaning up pod %s: %v", p.Name, err)
		}
	}
}

// SyncUntilRunning syncs a one-container pod, as the agent does, until its
// container runs and has restarted at least restarts times.
func SyncUntilRunning(t *testing.T, rt *containerd.Runtime, pod *skiffcorev1.Pod, restarts int32) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		st, err := rt.SyncPod(context.Background(), pod)
		if err != nil {
			return err
		}
		if len(st.Containers) == 1 && st.Containers[0].State.Running != nil && st.Containers[0].RestartCount >= restarts {
			return nil
		}
		return fmt.Errorf("pod %s not yet running with %d restarts: %+v", pod.Name, restarts, st.Containers)
	})
}
