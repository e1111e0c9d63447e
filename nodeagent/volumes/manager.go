// Package volumes materialises a pod's volumes on the node and resolves its
// containers' environment, as the kubelet's volume manager and env code do.
// Volumes live under <root>/<podUID>/volumes/<plugin>/<volumeName>; Setup
// returns the OCI bind mounts that put them into each container, so the
// runtime only passes them on. Files of ConfigMaps, Secrets and the downward
// API are written by an atomic writer, so that Update can change them under
// running containers.
package volumes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// Plugin directory names, as upstream's kubelet names them, so that a node's
// layout reads the same.
const (
	emptyDirPlugin    = "kubernetes.io~empty-dir"
	configMapPlugin   = "kubernetes.io~configmap"
	secretPlugin      = "kubernetes.io~secret"
	downwardAPIPlugin = "kubernetes.io~downward-api"
	projectedPlugin   = "kubernetes.io~projected"
)

// Manager sets up, updates and tears down the volumes of the pods of one
// node.
type Manager struct {
	root string
	r    Reader
	// Claims binds persistentVolumeClaim volumes to directories. NewManager
	// sets LocalPath{Root: <root>/../local-path}.
	Claims Claims
	// Allocatable is the node's allocatable resources: a downward API
	// resourceFieldRef to a limit the container does not set reads it.
	Allocatable corev1.ResourceList

	// mu serialises file operations, so that an Update racing a Teardown
	// cannot recreate a removed pod directory.
	mu sync.Mutex
}

// NewManager returns a Manager keeping pod volumes under root (the agent's
// <agentDir>/pods) and reading ConfigMaps and Secrets through r.
func NewManager(root string, r Reader) *Manager {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &Manager{root: root, r: r, Claims: LocalPath{Root: filepath.Join(filepath.Dir(root), "local-path")}}
}

// hostVolume is where a volume is on the node.
type hostVolume struct {
	path     string
	readOnly bool
}

// Setup materialises every volume of the pod and returns each container's
// mounts. It is idempotent: what exists is kept (emptyDir content, tmpfs
// mounts), and API-data files are rewritten only when they changed. A
// *FieldError means the pod's spec cannot run as written.
func (m *Manager) Setup(ctx context.Context, pod *skiffcorev1.Pod, podIP string) (Mounts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	vols := map[string]hostVolume{}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		hv, err := m.setupVolume(ctx, pod, fmt.Sprintf("spec.volumes[%d]", i), v, podIP)
		if err != nil {
			return nil, err
		}
		vols[v.Name] = hv
	}
	return podMounts(pod, vols)
}

// Update rewrites the pod's configMap, secret, downwardAPI and projected
// volumes from the current objects, for a pod whose volumes are set up.
// Containers see new content through their bind mounts; subPath mounts keep
// the old file, as upstream.
func (m *Manager) Update(ctx context.Context, pod *skiffcorev1.Pod) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := os.Stat(m.podDir(string(pod.UID))); os.IsNotExist(err) {
		return nil // torn down, or never set up: nothing to update
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !isAPIData(v) {
			continue
		}
		if _, err := m.setupAPIData(ctx, pod, fmt.Sprintf("spec.volumes[%d]", i), v, pod.Status.PodIP); err != nil {
			return err
		}
	}
	return nil
}

// Teardown unmounts what Setup mounted for the pod and removes its
// directory. Removing a pod that has nothing here is not an error.
// hostPath and persistentVolumeClaim data stay where they are.
func (m *Manager) Teardown(uid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := validateUID(uid); err != nil {
		return err
	}
	dir := m.podDir(uid)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return nil
	}
	if err := unmountUnder(dir); err != nil {
		return fmt.Errorf("tearing down volumes of pod %s: %w", uid, err)
	}
	return os.RemoveAll(dir)
}

// List returns the UIDs of the pods that have volume directories, so that a
// restarted agent can tear down those of pods that are gone.
func (m *Manager) List() ([]string, error) {
	entries, err := os.ReadDir(m.root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, e.Name())
		}
	}
	return uids, nil
}

func (m *Manager) podDir(uid string) string { return filepath.Join(m.root, uid) }

func (m *Manager) volumeDir(pod *skiffcorev1.Pod, plugin, name string) string {
	return filepath.Join(m.podDir(string(pod.UID)), "volumes", plugin, name)
}

func validateUID(uid string) error {
	if uid == "" || uid == "." || uid == ".." || filepath.Base(uid) != uid {
		return fmt.Errorf("invalid pod UID %q", uid)
	}
	return nil
}

// setupVolume makes one volume exist on the node.
func (m *Manager) setupVolume(ctx context.Context, pod *skiffcorev1.Pod, field string, v *corev1.Volume, podIP string) (hostVolume, error) {
	if errs := validation.IsDNS1123Label(v.Name); len(errs) != 0 {
		return hostVolume{}, fieldErrorf(field+".name", "%q is not a valid volume name: %s", v.Name, errs[0])
	}
	if err := validateUID(string(pod.UID)); err != nil {
		return hostVolume{}, err
	}
	switch {
	case v.EmptyDir != nil:
		return m.setupEmptyDir(pod, field+".emptyDir", v.Name, v.EmptyDir)
	case v.HostPath != nil:
		return hostVolume{path: v.HostPath.Path}, checkHostPath(field+".hostPath", v.HostPath)
	case isAPIData(v):
		return m.setupAPIData(ctx, pod, field, v, podIP)
	case v.PersistentVolumeClaim != nil:
		claim := v.PersistentVolumeClaim
		path, err := m.Claims.ClaimPath(ctx, pod.Namespace, claim.ClaimName)
		if err != nil {
			return hostVolume{}, fmt.Errorf("%s.persistentVolumeClaim: %w", field, err)
		}
		return hostVolume{path: path, readOnly: claim.ReadOnly}, nil
	}
	return hostVolume{}, fieldErrorf(field, "volume %q: skiff's node agent supports emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes only", v.Name)
}

func (m *Manager) setupEmptyDir(pod *skiffcorev1.Pod, field, name string, src *corev1.EmptyDirVolumeSource) (hostVolume, error) {
	dir := m.volumeDir(pod, emptyDirPlugin, name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return hostVolume{}, err
	}
	switch src.Medium {
	case corev1.StorageMediumDefault:
	case corev1.StorageMediumMemory:
		var size int64
		if src.SizeLimit != nil {
			size = src.SizeLimit.Value()
		}
		if err := ensureTmpfs(dir, size); err != nil {
			return hostVolume{}, fmt.Errorf("%s: %w", field, err)
		}
	default:
		return hostVolume{}, fieldErrorf(field+".medium", "unsupported medium %q: use \"\" (disk) or \"Memory\"", src.Medium)
	}
	// World-writable as upstream, so that containers of any user can write.
	return hostVolume{path: dir}, os.Chmod(dir, 0o777)
}

// isAPIData reports whether the volume's files come from the apiserver.
func isAPIData(v *corev1.Volume) bool { return apiDataPlugin(v) != "" }

// apiDataPlugin names the plugin directory of an API-data volume; "" for
// other volumes.
func apiDataPlugin(v *corev1.Volume) string {
	switch {
	case v.ConfigMap != nil:
		return configMapPlugin
	case v.Secret != nil:
		return secretPlugin
	case v.DownwardAPI != nil:
		return downwardAPIPlugin
	case v.Projected != nil:
		return projectedPlugin
	}
	return ""
}

// setupAPIData writes a configMap, secret, downwardAPI or projected volume.
// These are always read-only in the container, as upstream mounts them.
func (m *Manager) setupAPIData(ctx context.Context, pod *skiffcorev1.Pod, field string, v *corev1.Volume, podIP string) (hostVolume, error) {
	plugin := apiDataPlugin(v)
	dir := m.volumeDir(pod, plugin, v.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return hostVolume{}, err
	}
	if plugin == secretPlugin {
		// Secrets stay off the disk when the agent may mount a tmpfs, as
		// upstream keeps them; without root they are plain files.
		if err := ensureTmpfs(dir, 0); err != nil && os.Geteuid() == 0 {
			return hostVolume{}, fmt.Errorf("%s: %w", field, err)
		}
	}
	src := payloadSource{ctx: ctx, r: m.r, pod: pod, addrs: podAddresses{podIP: podIP}, allocatable: m.Allocatable}
	p, err := src.volumePayload(field, v)
	if err != nil {
		return hostVolume{}, err
	}
	if _, err := writeAtomic(dir, p); err != nil {
		return hostVolume{}, fmt.Errorf("%s: writing files of volume %q: %w", field, v.Name, err)
	}
	return hostVolume{path: dir, readOnly: true}, nil
}

// Mounts holds each container's OCI mounts, by container name.
type Mounts map[string][]specs.Mount

// For returns the mounts of the named container, in its volumeMounts' order.
func (m Mounts) For(containerName string) []specs.Mount { return m[containerName] }
