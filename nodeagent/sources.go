package nodeagent

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// APIUser is a Runtime that reads objects from the API for its pods (the
// ConfigMaps and Secrets of their volumes and env) and records Events on
// them. The host hands it its cached client and its Event recorder, and
// resyncs a pod when an object it uses changes, so that an update reaches
// running pods within moments (the kubelet's can take a minute).
type APIUser interface {
	UseAPI(c client.Reader, rec events.EventRecorder)
}

// podsUsing maps a changed ConfigMap or Secret to the hosted pods that use
// it, through a volume, a projected volume, env or envFrom.
func (h *Host) podsUsing(kind string) func(context.Context, client.Object) []reconcile.Request {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		pods := &skiffcorev1.PodList{}
		if err := h.client.List(ctx, pods, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for i := range pods.Items {
			p := &pods.Items[i]
			if h.agents[p.Spec.NodeName] != nil && usesObject(&p.Spec, kind, o.GetName()) {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
			}
		}
		return out
	}
}

// usesObject reports whether a pod spec refers to the ConfigMap or Secret
// (kind) named name.
func usesObject(spec *corev1.PodSpec, kind, name string) bool {
	for _, v := range spec.Volumes {
		if volumeUses(v.VolumeSource, kind, name) {
			return true
		}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if containerUses(&cs[i], kind, name) {
				return true
			}
		}
	}
	return false
}

func volumeUses(v corev1.VolumeSource, kind, name string) bool {
	switch {
	case kind == "ConfigMap" && v.ConfigMap != nil:
		return v.ConfigMap.Name == name
	case kind == "Secret" && v.Secret != nil:
		return v.Secret.SecretName == name
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			if (kind == "ConfigMap" && s.ConfigMap != nil && s.ConfigMap.Name == name) ||
				(kind == "Secret" && s.Secret != nil && s.Secret.Name == name) {
				return true
			}
		}
	}
	return false
}

func containerUses(c *corev1.Container, kind, name string) bool {
	for _, e := range c.EnvFrom {
		if (kind == "ConfigMap" && e.ConfigMapRef != nil && e.ConfigMapRef.Name == name) ||
			(kind == "Secret" && e.SecretRef != nil && e.SecretRef.Name == name) {
			return true
		}
	}
	for _, e := range c.Env {
		if f := e.ValueFrom; f != nil {
			if (kind == "ConfigMap" && f.ConfigMapKeyRef != nil && f.ConfigMapKeyRef.Name == name) ||
				(kind == "Secret" && f.SecretKeyRef != nil && f.SecretKeyRef.Name == name) {
				return true
			}
		}
	}
	return false
}
