package volumes

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/hosttest"
)

// everyVolumePod has one volume of each kind skiff supports, mounted by its
// main container, and a subPath mount of one ConfigMap key.
func everyVolumePod(hostDir string) *skiffcorev1.Pod {
	size := resource.MustParse("1Mi")
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	pod := testPod(corev1.Container{Name: "main", VolumeMounts: []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/scratch"},
		{Name: "cache", MountPath: "/cache"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
		{Name: "conf", MountPath: "/etc/app"},
		{Name: "conf", MountPath: "/etc/level", SubPath: "level"},
		{Name: "creds", MountPath: "/run/creds"},
		{Name: "info", MountPath: "/etc/podinfo"},
		{Name: "all", MountPath: "/etc/all"},
		{Name: "data", MountPath: "/data"},
	}})
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/work"}}}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: &dirOrCreate}}},
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
			Items:                []corev1.KeyToPath{{Key: "LEVEL", Path: "level"}, {Key: "PORT", Path: "net/port", Mode: ptr(int32(0o600))}},
		}}},
		{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0o400))}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}},
		{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "PORT", Path: "port"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Items: []corev1.KeyToPath{{Key: "USER", Path: "user"}}}},
		}}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-web-0"}}},
	}
	return pod
}

// mountsUnder lists the mounts at or below dir, from /proc/self/mountinfo.
func mountsUnder(t *testing.T, dir string) []*mountinfo.Info {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestManagerEveryVolumeKind(t *testing.T) {
	hosttest.RequireRoot(t)
	ctx := context.Background()
	agentDir := t.TempDir()
	root := filepath.Join(agentDir, "pods")
	hostDir := filepath.Join(t.TempDir(), "host", "dir")
	world := testObjects()
	m := NewManager(root, world)
	m.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}
	pod := everyVolumePod(hostDir)
	podDir := filepath.Join(root, string(pod.UID))
	t.Cleanup(func() {
		if err := m.Teardown(string(pod.UID)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	mounts, err := m.Setup(ctx, pod, "10.244.1.5")
	if err != nil {
		t.Fatal(err)
	}
	vol := func(plugin, name string) string { return filepath.Join(podDir, "volumes", plugin, name) }

	t.Run("mounts", func(t *testing.T) {
		conf := vol(configMapPlugin, "conf")
		levelTarget, err := filepath.EvalSymlinks(filepath.Join(conf, "level"))
		if err != nil {
			t.Fatal(err)
		}
		rw, ro := []string{"rbind", "rprivate", "rw"}, []string{"rbind", "rprivate", "ro"}
		want := []struct {
			dest, source string
			opts         []string
		}{
			{"/scratch", vol(emptyDirPlugin, "scratch"), rw},
			{"/cache", vol(emptyDirPlugin, "cache"), rw},
			{"/host", hostDir, ro},
			{"/etc/app", conf, ro},
			{"/etc/level", levelTarget, ro},
			{"/run/creds", vol(secretPlugin, "creds"), ro},
			{"/etc/podinfo", vol(downwardAPIPlugin, "info"), ro},
			{"/etc/all", vol(projectedPlugin, "all"), ro},
			{"/data", filepath.Join(agentDir, "local-path", "ns", "data-web-0"), rw},
		}
		got := mounts.For("main")
		if len(got) != len(want) {
			t.Fatalf("main has %d mounts, want %d: %+v", len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g.Destination != w.dest || g.Source != w.source || g.Type != "bind" || !slices.Equal(g.Options, w.opts) {
				t.Errorf("mount %d = %+v, want %s <- %s %v", i, g, w.dest, w.source, w.opts)
			}
		}
		if init := mounts.For("init"); len(init) != 1 || init[0].Source != vol(emptyDirPlugin, "scratch") {
			t.Errorf("init mounts = %+v", init)
		}
	})

	t.Run("emptyDir", func(t *testing.T) {
		for _, name := range []string{"scratch", "cache"} {
			info, err := os.Stat(vol(emptyDirPlugin, name))
			if err != nil || info.Mode().Perm() != 0o777 {
				t.Errorf("%s: %v, mode %v, want a 0777 directory", name, err, info.Mode())
			}
		}
		if got := mountsUnder(t, vol(emptyDirPlugin, "scratch")); len(got) != 0 {
			t.Errorf("an emptyDir on disk is a mount: %+v", got[0])
		}
		got := mountsUnder(t, vol(emptyDirPlugin, "cache"))
		if len(got) != 1 || got[0].FSType != "tmpfs" || !strings.Contains(got[0].VFSOptions, "size=1024k") {
			t.Fatalf("medium Memory: mounts %+v, want one tmpfs of size=1024k", got)
		}
	})

	t.Run("hostPath and claim", func(t *testing.T) {
		if info, err := os.Stat(hostDir); err != nil || !info.IsDir() {
			t.Errorf("DirectoryOrCreate did not create %s: %v", hostDir, err)
		}
		claim := filepath.Join(agentDir, "local-path", "ns", "data-web-0")
		if info, err := os.Stat(claim); err != nil || info.Mode().Perm() != 0o777 {
			t.Errorf("claim directory %s: %v, want a 0777 directory", claim, err)
		}
	})

	t.Run("configMap", func(t *testing.T) {
		conf := vol(configMapPlugin, "conf")
		if got := readVisible(t, conf); !maps.Equal(got, map[string]string{"level": "debug", "net/port": "8080"}) {
			t.Errorf("files %v", got)
		}
		for name, want := range map[string]string{"level": "..data/level", "net": "..data/net", "..data": dataTarget(t, conf)} {
			if got, err := os.Readlink(filepath.Join(conf, name)); err != nil || got != want {
				t.Errorf("%s -> %q (%v), want -> %q", name, got, err, want)
			}
		}
		for name, want := range map[string]os.FileMode{"level": 0o644, "net/port": 0o600} {
			if info, err := os.Stat(filepath.Join(conf, name)); err != nil || info.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %v", name, info.Mode(), err, want)
			}
		}
	})

	t.Run("secret on tmpfs", func(t *testing.T) {
		creds := vol(secretPlugin, "creds")
		if got := readVisible(t, creds); !maps.Equal(got, map[string]string{"USER": "admin", "PASS": "s3cret"}) {
			t.Errorf("files %v", got)
		}
		if info, err := os.Stat(filepath.Join(creds, "PASS")); err != nil || info.Mode().Perm() != 0o400 {
			t.Errorf("PASS: mode %v (%v), want 0400", info.Mode(), err)
		}
		if got := mountsUnder(t, creds); len(got) != 1 || got[0].FSType != "tmpfs" {
			t.Errorf("secret volume mounts %+v, want one tmpfs", got)
		}
	})

	t.Run("downwardAPI and projected", func(t *testing.T) {
		if got := readVisible(t, vol(downwardAPIPlugin, "info")); !maps.Equal(got, map[string]string{"labels": "app=\"web\"\ntier=\"front\"", "name": "web-0"}) {
			t.Errorf("downwardAPI files %q", got)
		}
		if got := readVisible(t, vol(projectedPlugin, "all")); !maps.Equal(got, map[string]string{"port": "8080", "user": "admin"}) {
			t.Errorf("projected files %q", got)
		}
	})

	t.Run("Setup again keeps content and mounts", func(t *testing.T) {
		keep := filepath.Join(vol(emptyDirPlugin, "cache"), "keep")
		if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := dataTarget(t, vol(configMapPlugin, "conf"))
		if _, err := m.Setup(ctx, pod, "10.244.1.5"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("emptyDir content lost: %v", err)
		}
		if got := mountsUnder(t, vol(emptyDirPlugin, "cache")); len(got) != 1 {
			t.Errorf("a second Setup stacked tmpfs mounts: %d", len(got))
		}
		if after := dataTarget(t, vol(configMapPlugin, "conf")); after != before {
			t.Errorf("unchanged configMap rewritten: ..data %s -> %s", before, after)
		}
	})

	t.Run("Update reaches a bind mount", func(t *testing.T) {
		conf := vol(configMapPlugin, "conf")
		// What a container sees: its own bind mount of the volume directory.
		seen := t.TempDir()
		if err := unix.Mount(conf, seen, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(seen, unix.MNT_DETACH) })
		if got := readFile(t, filepath.Join(seen, "level")); got != "debug" {
			t.Fatalf("level before update = %q", got)
		}
		before := dataTarget(t, conf)

		world.configMaps["app"].Data["LEVEL"] = "info"
		pod.Labels["tier"] = "back"
		if err := m.Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if after := dataTarget(t, conf); after == before {
			t.Fatalf("..data still points to %s", before)
		}
		if got := readFile(t, filepath.Join(seen, "level")); got != "info" {
			t.Errorf("level through the bind mount after update = %q, want info", got)
		}
		if _, err := os.Stat(filepath.Join(conf, before)); !os.IsNotExist(err) {
			t.Errorf("old version %s kept: %v", before, err)
		}
		if got := readFile(t, filepath.Join(vol(downwardAPIPlugin, "info"), "labels")); got != "app=\"web\"\ntier=\"back\"" {
			t.Errorf("labels after update = %q", got)
		}
		// The subPath mount's source is the old file: it never updates.
		if got := mounts.For("main")[4].Source; !strings.Contains(got, before) {
			t.Errorf("subPath source %s is not in the first version %s", got, before)
		}
		unchanged := dataTarget(t, conf)
		if err := m.Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if got := dataTarget(t, conf); got != unchanged {
			t.Errorf("Update without a change swapped ..data: %s -> %s", unchanged, got)
		}
	})

	t.Run("Teardown after an agent restart", func(t *testing.T) {
		claimFile := filepath.Join(agentDir, "local-path", "ns", "data-web-0", "state")
		if err := os.WriteFile(claimFile, []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
		restarted := NewManager(root, world)
		if uids, err := restarted.List(); err != nil || !slices.Equal(uids, []string{string(pod.UID)}) {
			t.Fatalf("List = %v, %v", uids, err)
		}
		if err := restarted.Teardown(string(pod.UID)); err != nil {
			t.Fatal(err)
		}
		if got := mountsUnder(t, podDir); len(got) != 0 {
			t.Errorf("mounts left: %+v", got[0])
		}
		if _, err := os.Stat(podDir); !os.IsNotExist(err) {
			t.Errorf("pod directory left: %v", err)
		}
		if uids, _ := restarted.List(); len(uids) != 0 {
			t.Errorf("List after Teardown = %v", uids)
		}
		if err := restarted.Teardown(string(pod.UID)); err != nil {
			t.Errorf("second Teardown: %v", err)
		}
		if err := restarted.Update(ctx, pod); err != nil {
			t.Errorf("Update of a torn-down pod: %v", err)
		}
		if _, err := os.Stat(podDir); !os.IsNotExist(err) {
			t.Errorf("Update recreated the pod directory: %v", err)
		}
		if got := readFile(t, claimFile); got != "kept" {
			t.Errorf("claim data = %q, want it kept for the next pod", got)
		}
		if _, err := os.Stat(hostDir); err != nil {
			t.Errorf("hostPath removed: %v", err)
		}
	})
}

// A pod whose ConfigMap is missing fails with a config error naming the
// volume, which the runtime reports as CreateContainerConfigError.
func TestSetupConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       corev1.Volume
		wantErr string
	}{{
		name:    "missing configMap",
		v:       corev1.Volume{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		wantErr: `spec.volumes[0].configMap: configmap "nope" not found: create it or mark the reference optional`,
	}, {
		name:    "unsupported kind",
		v:       corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "x", Path: "/"}}},
		wantErr: `spec.volumes[0]: volume "nfs": skiff's node agent supports emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes only`,
	}, {
		name:    "volume name that is a path",
		v:       corev1.Volume{Name: "../x", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		wantErr: `spec.volumes[0].name: "../x" is not a valid volume name`,
	}, {
		name:    "hugepages medium",
		v:       corev1.Volume{Name: "hp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumHugePages}}},
		wantErr: `spec.volumes[0].emptyDir.medium: unsupported medium "HugePages": use "" (disk) or "Memory"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManager(filepath.Join(t.TempDir(), "pods"), testObjects())
			pod := testPod(corev1.Container{Name: "main"})
			pod.Spec.Volumes = []corev1.Volume{tc.v}
			t.Cleanup(func() { m.Teardown(string(pod.UID)) })
			_, err := m.Setup(context.Background(), pod, "")
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) || !IsConfigError(err) {
				t.Fatalf("error = %v\nwant config error %s", err, tc.wantErr)
			}
		})
	}
}
