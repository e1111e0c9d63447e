package volumes

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestCheckHostPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	for _, tc := range []struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string // substring; "" for success
		created os.FileMode
	}{
		{name: "unset type, missing path", path: filepath.Join(dir, "nothing"), typ: corev1.HostPathUnset},
		{name: "DirectoryOrCreate creates", path: filepath.Join(dir, "new/sub"), typ: corev1.HostPathDirectoryOrCreate, created: os.ModeDir},
		{name: "DirectoryOrCreate on a file", path: file, typ: corev1.HostPathDirectoryOrCreate, wantErr: "is not a directory"},
		{name: "Directory exists", path: dir, typ: corev1.HostPathDirectory},
		{name: "Directory missing", path: filepath.Join(dir, "missing"), typ: corev1.HostPathDirectory, wantErr: "does not exist on the node: create it or use type DirectoryOrCreate/FileOrCreate"},
		{name: "FileOrCreate creates", path: filepath.Join(dir, "newfile"), typ: corev1.HostPathFileOrCreate, created: 0},
		{name: "FileOrCreate without its directory", path: filepath.Join(dir, "nodir/f"), typ: corev1.HostPathFileOrCreate, wantErr: "its directory must exist"},
		{name: "File exists", path: file, typ: corev1.HostPathFile},
		{name: "File on a directory", path: dir, typ: corev1.HostPathFile, wantErr: "is not a regular file"},
		{name: "Socket", path: sock, typ: corev1.HostPathSocket},
		{name: "Socket on a file", path: file, typ: corev1.HostPathSocket, wantErr: "is not a socket"},
		{name: "CharDevice", path: "/dev/null", typ: corev1.HostPathCharDev},
		{name: "CharDevice on a file", path: file, typ: corev1.HostPathCharDev, wantErr: "is not a character device"},
		{name: "BlockDevice on a char device", path: "/dev/null", typ: corev1.HostPathBlockDev, wantErr: "is not a block device"},
		{name: "unknown type", path: dir, typ: "Fifo", wantErr: `spec.volumes[0].hostPath.type: unknown hostPath type "Fifo"`},
		{name: "relative path", path: "etc", typ: corev1.HostPathUnset, wantErr: `spec.volumes[0].hostPath.path: must be an absolute path on the node, got "etc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			err := checkHostPath("spec.volumes[0].hostPath", &corev1.HostPathVolumeSource{Path: tc.path, Type: &typ})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !IsConfigError(err) {
					t.Fatalf("error = %v, want a config error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(tc.name, "creates") {
				info, err := os.Stat(tc.path)
				if err != nil || info.Mode().Type() != tc.created {
					t.Fatalf("%s was not created as %v: %v", tc.path, tc.created, err)
				}
			}
		})
	}
}
