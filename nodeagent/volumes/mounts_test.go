package volumes

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

func TestContainerMounts(t *testing.T) {
	vol := t.TempDir()
	outside := t.TempDir()
	for _, link := range []struct{ name, target string }{
		{"escape", outside}, {"abs-escape", "/etc"}, {"inside", "sub"}, {"dangling", "nowhere"},
	} {
		if err := os.Symlink(link.target, filepath.Join(vol, link.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(vol, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	vols := map[string]hostVolume{"data": {path: vol}, "conf": {path: vol, readOnly: true}}
	hostToContainer := corev1.MountPropagationHostToContainer
	bidirectional := corev1.MountPropagationBidirectional

	for _, tc := range []struct {
		name    string
		vm      corev1.VolumeMount
		want    specs.Mount
		wantErr string
	}{{
		name: "whole volume, read-write",
		vm:   corev1.VolumeMount{Name: "data", MountPath: "/data"},
		want: specs.Mount{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "rprivate", "rw"}},
	}, {
		name: "readOnly mount",
		vm:   corev1.VolumeMount{Name: "data", MountPath: "/data", ReadOnly: true, MountPropagation: &hostToContainer},
		want: specs.Mount{Destination: "/data", Type: "bind", Source: vol, Options: []string{"rbind", "rslave", "ro"}},
	}, {
		name: "read-only volume",
		vm:   corev1.VolumeMount{Name: "conf", MountPath: "/etc/conf", MountPropagation: &bidirectional},
		want: specs.Mount{Destination: "/etc/conf", Type: "bind", Source: vol, Options: []string{"rbind", "rshared", "ro"}},
	}, {
		name: "subPath that does not exist yet is created",
		vm:   corev1.VolumeMount{Name: "data", MountPath: "/logs", SubPath: "logs/app"},
		want: specs.Mount{Destination: "/logs", Type: "bind", Source: filepath.Join(vol, "logs/app"), Options: []string{"rbind", "rprivate", "rw"}},
	}, {
		name: "subPath through a symlink inside the volume",
		vm:   corev1.VolumeMount{Name: "data", MountPath: "/s", SubPath: "inside"},
		want: specs.Mount{Destination: "/s", Type: "bind", Source: filepath.Join(vol, "sub"), Options: []string{"rbind", "rprivate", "rw"}},
	}, {
		name:    "subPath with ..",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "a/../../etc"},
		wantErr: "spec.containers[0].volumeMounts[0].subPath: must not contain '..'",
	}, {
		name:    "absolute subPath",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "/etc"},
		wantErr: `spec.containers[0].volumeMounts[0].subPath: must be a relative path, got "/etc"`,
	}, {
		name:    "subPath escaping through a symlink",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "escape/more"},
		wantErr: `spec.containers[0].volumeMounts[0].subPath: "escape/more" leads outside its volume through a symlink`,
	}, {
		name:    "subPath escaping through an absolute symlink",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "abs-escape"},
		wantErr: `spec.containers[0].volumeMounts[0].subPath: "abs-escape" leads outside its volume through a symlink`,
	}, {
		name:    "subPath through a dangling symlink",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "dangling"},
		wantErr: `spec.containers[0].volumeMounts[0].subPath: "dangling" is a dangling symlink in the volume`,
	}, {
		name:    "unknown volume",
		vm:      corev1.VolumeMount{Name: "ghost", MountPath: "/x"},
		wantErr: `spec.containers[0].volumeMounts[0].name: no volume "ghost" in spec.volumes`,
	}, {
		name:    "relative mountPath",
		vm:      corev1.VolumeMount{Name: "data", MountPath: "data"},
		wantErr: `spec.containers[0].volumeMounts[0].mountPath: must be an absolute path, got "data"`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := containerMounts("spec.containers[0]", []corev1.VolumeMount{tc.vm}, vols)
			if tc.wantErr != "" {
				requireConfigError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("mounts = %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("a subPath created %v outside its volume", entries)
	}
}
