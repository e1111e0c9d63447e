package volumes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// podMounts builds the mounts of every container of the pod from where its
// volumes are on the node.
func podMounts(pod *skiffcorev1.Pod, vols map[string]hostVolume) (Mounts, error) {
	out := Mounts{}
	lists := []struct {
		field      string
		containers []corev1.Container
	}{{"spec.initContainers", pod.Spec.InitContainers}, {"spec.containers", pod.Spec.Containers}}
	for _, list := range lists {
		for i, c := range list.containers {
			mounts, err := containerMounts(fmt.Sprintf("%s[%d]", list.field, i), c.VolumeMounts, vols)
			if err != nil {
				return nil, err
			}
			out[c.Name] = mounts
		}
	}
	return out, nil
}

// containerMounts turns a container's volumeMounts into OCI bind mounts.
func containerMounts(field string, vms []corev1.VolumeMount, vols map[string]hostVolume) ([]specs.Mount, error) {
	mounts := make([]specs.Mount, 0, len(vms))
	for j, vm := range vms {
		f := fmt.Sprintf("%s.volumeMounts[%d]", field, j)
		vol, ok := vols[vm.Name]
		if !ok {
			return nil, fieldErrorf(f+".name", "no volume %q in spec.volumes", vm.Name)
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, fieldErrorf(f+".mountPath", "must be an absolute path, got %q", vm.MountPath)
		}
		if vm.SubPathExpr != "" {
			return nil, fieldErrorf(f+".subPathExpr", "not supported by skiff's node agent: use subPath")
		}
		source := vol.path
		if vm.SubPath != "" {
			var err error
			if source, err = resolveSubPath(f+".subPath", vol.path, vm.SubPath); err != nil {
				return nil, err
			}
		}
		mounts = append(mounts, specs.Mount{
			Destination: vm.MountPath,
			Type:        "bind",
			Source:      source,
			Options:     bindOptions(vm, vol.readOnly),
		})
	}
	return mounts, nil
}

// bindOptions are the OCI options of a volume's bind mount: recursive, with
// the asked propagation, read-only when the mount or the volume says so.
func bindOptions(vm corev1.VolumeMount, volumeReadOnly bool) []string {
	propagation := "rprivate"
	if vm.MountPropagation != nil {
		switch *vm.MountPropagation {
		case corev1.MountPropagationHostToContainer:
			propagation = "rslave"
		case corev1.MountPropagationBidirectional:
			propagation = "rshared"
		}
	}
	access := "rw"
	if vm.ReadOnly || volumeReadOnly {
		access = "ro"
	}
	return []string{"rbind", propagation, access}
}

// resolveSubPath returns the node path of subPath inside the volume at root,
// creating missing directories as upstream does. It walks one name at a time
// and follows each symlink itself, so that neither ".." nor a symlink a
// container left in its volume can lead the bind mount (or the directories
// created) outside the volume.
func resolveSubPath(field, root, subPath string) (string, error) {
	if filepath.IsAbs(subPath) {
		return "", fieldErrorf(field, "must be a relative path, got %q", subPath)
	}
	for _, part := range strings.Split(subPath, "/") {
		if part == ".." {
			return "", fieldErrorf(field, "must not contain '..'")
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	cur := realRoot
	for _, part := range strings.Split(filepath.Clean(subPath), "/") {
		next := filepath.Join(cur, part)
		info, err := os.Lstat(next)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.Mkdir(next, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case info.Mode()&os.ModeSymlink != 0:
			if next, err = filepath.EvalSymlinks(next); err != nil {
				return "", fieldErrorf(field, "%q is a dangling symlink in the volume", subPath)
			}
		}
		if !within(realRoot, next) {
			return "", fieldErrorf(field, "%q leads outside its volume through a symlink", subPath)
		}
		cur = next
	}
	return cur, nil
}

// within reports whether path is root or below it.
func within(root, path string) bool {
	return path == root || strings.HasPrefix(path, root+string(filepath.Separator))
}
