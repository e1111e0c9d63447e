package volumes

import (
	"io/fs"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// checkHostPath applies a hostPath volume's type as upstream does: the
// *OrCreate types create what is missing, the others require the path to
// exist and be of that kind, and an empty type checks nothing.
func checkHostPath(field string, src *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if src.Type != nil {
		typ = *src.Type
	}
	want, ok := hostPathKinds[typ]
	if !ok {
		return fieldErrorf(field+".type", "unknown hostPath type %q", typ)
	}
	path := src.Path
	if path == "" || path[0] != '/' {
		return fieldErrorf(field+".path", "must be an absolute path on the node, got %q", path)
	}
	info, err := os.Stat(path)
	if os.IsNotExist(err) {
		switch typ {
		case corev1.HostPathUnset:
			return nil
		case corev1.HostPathDirectoryOrCreate:
			// 0755 as upstream, so that it can be read by containers of
			// any user; the kubelet does not make it world-writable.
			return os.MkdirAll(path, 0o755)
		case corev1.HostPathFileOrCreate:
			f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return fieldErrorf(field+".path", "creating file %s: %v (its directory must exist)", path, err)
			}
			return f.Close()
		}
		return fieldErrorf(field+".type", "%s: %s does not exist on the node: create it or use type DirectoryOrCreate/FileOrCreate", typ, path)
	}
	if err != nil {
		return err
	}
	if want.matches != nil && !want.matches(info.Mode()) {
		return fieldErrorf(field+".type", "%s: %s is not a %s", typ, path, want.noun)
	}
	return nil
}

// hostPathKinds says, for each hostPath type, what an existing path must be.
var hostPathKinds = map[corev1.HostPathType]struct {
	noun    string
	matches func(fs.FileMode) bool
}{
	corev1.HostPathUnset:             {"", nil},
	corev1.HostPathDirectoryOrCreate: {"directory", fs.FileMode.IsDir},
	corev1.HostPathDirectory:         {"directory", fs.FileMode.IsDir},
	corev1.HostPathFileOrCreate:      {"regular file", fs.FileMode.IsRegular},
	corev1.HostPathFile:              {"regular file", fs.FileMode.IsRegular},
	corev1.HostPathSocket:            {"socket", func(m fs.FileMode) bool { return m&fs.ModeSocket != 0 }},
	corev1.HostPathCharDev:           {"character device", func(m fs.FileMode) bool { return m&fs.ModeCharDevice != 0 }},
	corev1.HostPathBlockDev:          {"block device", func(m fs.FileMode) bool { return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 }},
}
