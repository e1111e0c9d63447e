package volumes

import (
	"context"
	"maps"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestVolumePayload(t *testing.T) {
	cpu := resource.MustParse("1m")
	for _, tc := range []struct {
		name    string
		v       corev1.Volume
		want    map[string]string      // path -> content
		modes   map[string]os.FileMode // path -> mode, where checked
		wantErr string
	}{{
		name:  "configMap: every key, default mode 0644",
		v:     corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		want:  map[string]string{"LEVEL": "debug", "PORT": "8080", "bad=key": "x"},
		modes: map[string]os.FileMode{"LEVEL": 0o644},
	}, {
		name: "configMap: items at their paths, item mode over defaultMode",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, DefaultMode: ptr(int32(0o440)),
			Items: []corev1.KeyToPath{{Key: "LEVEL", Path: "conf/level"}, {Key: "PORT", Path: "port", Mode: ptr(int32(0o600))}},
		}}},
		want:  map[string]string{"conf/level": "debug", "port": "8080"},
		modes: map[string]os.FileMode{"conf/level": 0o440, "port": 0o600},
	}, {
		name: "configMap: missing item key",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "LEVEL", Path: "l"}, {Key: "nokey", Path: "n"}},
		}}},
		wantErr: `spec.volumes[0].configMap.items[1].key: configmap "app" has no key "nokey": add it or mark the volume optional`,
	}, {
		name: "configMap: optional, missing item key left out",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Optional: ptr(true), Items: []corev1.KeyToPath{{Key: "LEVEL", Path: "l"}, {Key: "nokey", Path: "n"}},
		}}},
		want: map[string]string{"l": "debug"},
	}, {
		name:    "configMap: missing object",
		v:       corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
		wantErr: `spec.volumes[0].configMap: configmap "nope" not found: create it or mark the reference optional`,
	}, {
		name: "configMap: optional missing object is an empty volume",
		v:    corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}}},
		want: map[string]string{},
	}, {
		name: "configMap: item path escaping the volume",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "LEVEL", Path: "../../etc/x"}},
		}}},
		wantErr: `spec.volumes[0].configMap.items[0].path: file path "../../etc/x" must not start with '..'`,
	}, {
		name:  "secret: every key, defaultMode",
		v:     corev1.Volume{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0o400))}}},
		want:  map[string]string{"USER": "admin", "PASS": "s3cret"},
		modes: map[string]os.FileMode{"USER": 0o400},
	}, {
		name:    "secret: missing object",
		v:       corev1.Volume{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}},
		wantErr: `spec.volumes[0].secret: secret "nope" not found: create it or mark the reference optional`,
	}, {
		name: "downwardAPI: fields and resources",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}, Mode: ptr(int32(0o600))},
			{Path: "cpu_limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.cpu", Divisor: cpu}},
		}}}},
		want:  map[string]string{"name": "web-0", "labels": "app=\"web\"\ntier=\"front\"", "annotations": `note="say \"hi\""`, "cpu_limit": "2000"},
		modes: map[string]os.FileMode{"name": 0o644, "annotations": 0o600},
	}, {
		name: "downwardAPI: resource of an unknown container",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "x", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}},
		}}}},
		wantErr: `spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: no container "ghost" in the pod`,
	}, {
		name: "projected: sources merged",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "PORT", Path: "port"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Items: []corev1.KeyToPath{{Key: "USER", Path: "user"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}},
		want: map[string]string{"port": "8080", "user": "admin", "ns": "ns"},
	}, {
		name: "projected: service account tokens are not supported",
		v: corev1.Volume{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		}}}},
		wantErr: `spec.volumes[0].projected.sources[0]: skiff's node agent projects only configMap, secret and downwardAPI sources`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(corev1.Container{Name: "main"})
			src := payloadSource{ctx: context.Background(), r: testObjects(), pod: pod,
				allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}
			p, err := src.volumePayload("spec.volumes[0]", &tc.v)
			if tc.wantErr != "" {
				requireConfigError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for path, f := range p {
				got[path] = string(f.data)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("files %q, want %q", got, tc.want)
			}
			for path, mode := range tc.modes {
				if p[path].mode != mode {
					t.Errorf("%s: mode %v, want %v", path, p[path].mode, mode)
				}
			}
		})
	}
}
