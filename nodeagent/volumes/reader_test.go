package volumes

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// objects stands in for the apiserver's reads: what these tests check is
// what the node makes of the objects, not how they are fetched.
type objects struct {
	configMaps map[string]*corev1.ConfigMap // by name, namespace "ns"
	secrets    map[string]*corev1.Secret
}

func (o *objects) ConfigMap(_ context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	if cm, ok := o.configMaps[name]; ok && namespace == "ns" {
		return cm.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (o *objects) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok && namespace == "ns" {
		return s.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: data}
}

func secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// testObjects is the world most tests read.
func testObjects() *objects {
	return &objects{
		configMaps: map[string]*corev1.ConfigMap{
			"app": configMap("app", map[string]string{"LEVEL": "debug", "PORT": "8080", "bad=key": "x"}),
		},
		secrets: map[string]*corev1.Secret{
			"creds": secret("creds", map[string]string{"USER": "admin", "PASS": "s3cret"}),
		},
	}
}

func ptr[T any](v T) *T { return &v }

func TestLocalPathClaimPath(t *testing.T) {
	root := t.TempDir()
	lp := LocalPath{Root: root}
	for _, tc := range []struct {
		namespace, claim string
		want             string // "" for an error
	}{
		{"ns", "data-web-0", filepath.Join(root, "ns", "data-web-0")},
		{"ns", "../escape", ""},
		{"..", "x", ""},
		{"ns", "", ""},
		{"a/b", "c", ""},
	} {
		got, err := lp.ClaimPath(context.Background(), tc.namespace, tc.claim)
		if tc.want == "" {
			if err == nil {
				t.Errorf("claim %s/%s: got %s, want an error", tc.namespace, tc.claim, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("claim %s/%s = %s, %v; want %s", tc.namespace, tc.claim, got, err, tc.want)
			continue
		}
		if info, err := os.Stat(got); err != nil || !info.IsDir() || info.Mode().Perm() != 0o777 {
			t.Errorf("claim directory %s: %v, want a 0777 directory", got, err)
		}
	}
}
