package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Reader is what volumes and env need from the apiserver: the pod's
// ConfigMaps and Secrets. The agent implements it over its controller-runtime
// client; a missing object must come back as an apierrors NotFound error, so
// that optional references can tell "absent" from "could not ask".
type Reader interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// Claims resolves a PersistentVolumeClaim to the directory on this node that
// backs it. It is the seam between the volume manager and whatever provisions
// and binds claims.
type Claims interface {
	ClaimPath(ctx context.Context, namespace, claimName string) (string, error)
}

// LocalPath is the simplest provisioner that makes StatefulSet claims work on
// one node: every claim is the directory Root/<namespace>/<claim>, created on
// first use and kept when the pod goes, so that a StatefulSet's replacement
// pod finds its data again. It knows nothing of capacity, access modes,
// PersistentVolume objects or other nodes.
type LocalPath struct {
	Root string
}

// ClaimPath returns (and creates) the claim's directory.
func (l LocalPath) ClaimPath(_ context.Context, namespace, claimName string) (string, error) {
	for _, name := range []string{namespace, claimName} {
		if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
			return "", fmt.Errorf("claim %s/%s: names must be non-empty and free of '/' and '..'", namespace, claimName)
		}
	}
	dir := filepath.Join(l.Root, namespace, claimName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("claim %s/%s: %w", namespace, claimName, err)
	}
	// World-writable as upstream's local-path-provisioner makes its
	// directories, so that containers running as any user can write.
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", err
	}
	return dir, nil
}

// getConfigMap reads a ConfigMap; found is false (and err nil) when it does
// not exist and optional says that is fine.
func getConfigMap(ctx context.Context, r Reader, field, namespace, name string, optional *bool) (cm *corev1.ConfigMap, found bool, err error) {
	cm, err = r.ConfigMap(ctx, namespace, name)
	return cm, err == nil, absentError(err, field, "configmap", name, optional)
}

// getSecret is getConfigMap for Secrets.
func getSecret(ctx context.Context, r Reader, field, namespace, name string, optional *bool) (s *corev1.Secret, found bool, err error) {
	s, err = r.Secret(ctx, namespace, name)
	return s, err == nil, absentError(err, field, "secret", name, optional)
}

// absentError turns a read error into nil for an optional missing object,
// a FieldError for a required missing one, and keeps other errors as they
// are (transient: the runtime retries).
func absentError(err error, field, kind, name string, optional *bool) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err) && isTrue(optional):
		return nil
	case apierrors.IsNotFound(err):
		return fieldErrorf(field, "%s %q not found: create it or mark the reference optional", kind, name)
	default:
		return fmt.Errorf("%s: reading %s %q: %w", field, kind, name, err)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }
