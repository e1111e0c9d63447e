package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestInitContainersAndSidecar: an init container runs to completion
// first, a sidecar starts before the main container and keeps running
// beside it, and they share an emptyDir.
func TestInitContainersAndSidecar(t *testing.T) {
	n := startNode(t)
	always := corev1.ContainerRestartPolicyAlways
	mount := []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
	p := n.pod("init", corev1.Container{Name: "main", Image: busybox, VolumeMounts: mount,
		Command: []string{"sh", "-c", "cat /work/msg; test -f /work/sidecar && echo sidecar-alive; sleep 3600"}})
	p.Spec.InitContainers = []corev1.Container{
		{Name: "setup", Image: busybox, VolumeMounts: mount, Command: []string{"sh", "-c", "echo from-init > /work/msg"}},
		{Name: "helper", Image: busybox, VolumeMounts: mount, RestartPolicy: &always, Command: []string{"sh", "-c", "touch /work/sidecar; sleep 3600"}},
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	got := waitPod(t, create(t, p), 60*time.Second, running)
	init := got.Status.InitContainerStatuses
	if len(init) != 2 || init[0].State.Terminated == nil || init[0].State.Terminated.Reason != "Completed" || init[1].State.Running == nil {
		t.Errorf("init container statuses %+v: want setup Completed and helper running", init)
	}
	if condition(got, corev1.PodInitialized) != corev1.ConditionTrue {
		t.Errorf("Initialized %s", condition(got, corev1.PodInitialized))
	}
	waitFor(t, 20*time.Second, func() error {
		if err := logContains(n, got, "main", "from-init"); err != nil {
			return err
		}
		return logContains(n, got, "main", "sidecar-alive")
	})
}

// TestSecurityContextAndResources: the container runs as the user asked,
// on a read-only root, with its CPU limit as a CFS quota, its request as
// shares and its memory limit in its cgroup.
func TestSecurityContextAndResources(t *testing.T) {
	n := startNode(t)
	c := corev1.Container{Name: "main", Image: busybox, Command: []string{"sh", "-c", "id -u; touch /x || echo read-only; sleep 3600"}}
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(65534)), ReadOnlyRootFilesystem: ptr(true)}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("500m"), corev1.ResourceMemory: mustQuantity("64Mi")}
	got := waitPod(t, create(t, n.pod("secure", c)), 60*time.Second, running)
	waitFor(t, 20*time.Second, func() error {
		if err := logContains(n, got, "main", "stdout F 65534"); err != nil {
			return err
		}
		return logContains(n, got, "main", "read-only")
	})
	id := strings.TrimPrefix(containerStatus(got, "main").ContainerID, "containerd://")
	dir := func(ctrl string) string {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, "skiff", "pod*", id))
		if len(matches) != 1 {
			t.Fatalf("cgroup of container %s in %s: %v", id, ctrl, matches)
		}
		return matches[0]
	}
	for file, want := range map[string]string{
		filepath.Join(dir("cpu"), "cpu.cfs_quota_us"):         "50000",
		filepath.Join(dir("cpu"), "cpu.shares"):               "512",
		filepath.Join(dir("memory"), "memory.limit_in_bytes"): "67108864",
	} {
		b, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, %v; want %s", file, b, err, want)
		}
	}
}

// TestImagePullBackOff: an image that is not on the node and cannot be
// pulled gives ErrImagePull, then ImagePullBackOff, with the reason.
func TestImagePullBackOff(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("nopull", corev1.Container{Name: "main", Image: "localhost:1/skiff/missing:v1"}))
	seen := map[string]string{}
	waitPod(t, p, 60*time.Second, func(p *skiffcorev1.Pod) error {
		if cs := containerStatus(p, "main"); cs != nil && cs.State.Waiting != nil {
			seen[cs.State.Waiting.Reason] = cs.State.Waiting.Message
		}
		if _, ok := seen["ImagePullBackOff"]; !ok {
			return fmt.Errorf("reasons so far: %v", seen)
		}
		return nil
	})
	if msg := seen["ImagePullBackOff"]; !strings.Contains(msg, `Back-off pulling image "localhost:1/skiff/missing:v1"`) {
		t.Errorf("ImagePullBackOff message %q", msg)
	}
}

// TestLifecycleHooks: postStart runs once the container started; preStop
// runs before the stop signal when the pod is deleted.
func TestLifecycleHooks(t *testing.T) {
	n := startNode(t)
	shared := t.TempDir()
	c := corev1.Container{Name: "main", Image: busybox, Command: []string{"sh", "-c", "while true; do sleep 0.2; done"},
		VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
		Lifecycle: &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo started > /out/poststart"}}},
			PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo stopping > /out/prestop"}}},
		}}
	p := n.pod("hooks", c)
	p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: shared}}}}
	waitPod(t, create(t, p), 60*time.Second, running)
	if b, err := os.ReadFile(filepath.Join(shared, "poststart")); err != nil || strings.TrimSpace(string(b)) != "started" {
		t.Errorf("postStart: %q, %v", b, err)
	}
	if err := env.Client.Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error { return gone(p) })
	if b, err := os.ReadFile(filepath.Join(shared, "prestop")); err != nil || strings.TrimSpace(string(b)) != "stopping" {
		t.Errorf("preStop: %q, %v", b, err)
	}
}
