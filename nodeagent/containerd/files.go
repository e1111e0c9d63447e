package containerd

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/volumes"
)

// podFiles is PodFiles over nodeagent/volumes: volumes on the node's disk
// and env resolved from the API.
type podFiles struct {
	volumes     *volumes.Manager
	reader      volumes.Reader
	allocatable corev1.ResourceList
}

// UseAPI hands the runtime the agent's client, which it reads the pods'
// ConfigMaps and Secrets with, for their volumes and env, and the recorder
// it tells the pods' stories with.
func (r *Runtime) UseAPI(c client.Reader, rec events.EventRecorder) {
	r.mu.Lock()
	r.events = rec
	r.mu.Unlock()
	reader := apiReader{c}
	m := volumes.NewManager(r.podsDir(), reader)
	m.Allocatable = r.cfg.Allocatable
	r.cfg.Files = &podFiles{volumes: m, reader: reader, allocatable: r.cfg.Allocatable}
}

func (f *podFiles) Mounts(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container, podIP string) ([]specs.Mount, error) {
	mounts, err := f.volumes.Setup(ctx, pod, podIP)
	if err != nil {
		return nil, err
	}
	return mounts.For(c.Name), nil
}

func (f *podFiles) Env(ctx context.Context, pod *skiffcorev1.Pod, c *corev1.Container, podIP, hostIP string) ([]string, error) {
	return volumes.ResolveEnv(ctx, f.reader, pod, c, podIP, hostIP, f.allocatable)
}

func (f *podFiles) Update(ctx context.Context, pod *skiffcorev1.Pod) error {
	return f.volumes.Update(ctx, pod)
}

func (f *podFiles) Teardown(_ context.Context, uid types.UID) error {
	return f.volumes.Teardown(string(uid))
}

// apiReader reads ConfigMaps and Secrets through a controller-runtime
// client.
type apiReader struct{ c client.Reader }

func (a apiReader) ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	return cm, a.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cm)
}

func (a apiReader) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, a.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, s)
}
