package volumes

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// ResolveEnv computes container c's environment as "K=V" strings, as the
// kubelet does: envFrom first (each source's keys, with its prefix; keys that
// are no valid variable name are skipped), then env in order, where a value's
// $(VAR) references expand to variables defined before it and valueFrom reads
// the downward API (fieldRef, resourceFieldRef, with limits defaulting to
// the node's allocatable), ConfigMaps or Secrets. A later definition of a
// name overrides an earlier one in place, so env overrides envFrom. A missing
// object or key that is not optional fails with a FieldError naming the
// field, e.g. `spec.containers[0].env[2].valueFrom.configMapKeyRef:
// configmap "x" not found: ...`.
func ResolveEnv(ctx context.Context, r Reader, pod *skiffcorev1.Pod, c *corev1.Container, podIP, hostIP string, allocatable corev1.ResourceList) ([]string, error) {
	e := envResolver{ctx: ctx, r: r, pod: pod, field: containerField(pod, c.Name),
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	var env orderedEnv
	for i, from := range c.EnvFrom {
		vars, err := e.envFrom(fmt.Sprintf("%s.envFrom[%d]", e.field, i), from)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(vars) {
			env.set(from.Prefix+k, vars[k])
		}
	}
	for i, v := range c.Env {
		field := fmt.Sprintf("%s.env[%d]", e.field, i)
		value, ok, err := e.envValue(field, v, env.lookup, c, podAddresses{podIP: podIP, hostIP: hostIP}, allocatable)
		if err != nil {
			return nil, err
		}
		if ok {
			env.set(v.Name, value)
		}
	}
	return env.pairs(), nil
}

// envResolver reads each ConfigMap and Secret of one container once, so that
// all its references see the same version.
type envResolver struct {
	ctx        context.Context
	r          Reader
	pod        *skiffcorev1.Pod
	field      string
	configMaps map[string]*corev1.ConfigMap // nil value: absent and optional
	secrets    map[string]*corev1.Secret
}

// envFrom returns the variables one envFrom source defines, unprefixed.
func (e *envResolver) envFrom(field string, from corev1.EnvFromSource) (map[string]string, error) {
	vars := map[string]string{}
	switch {
	case from.ConfigMapRef != nil:
		cm, err := e.configMap(field+".configMapRef", from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
		if err != nil || cm == nil {
			return nil, err
		}
		for k, v := range cm.Data {
			vars[k] = v
		}
	case from.SecretRef != nil:
		s, err := e.secret(field+".secretRef", from.SecretRef.Name, from.SecretRef.Optional)
		if err != nil || s == nil {
			return nil, err
		}
		for k, v := range s.Data {
			vars[k] = string(v)
		}
	}
	for k := range vars {
		if len(validation.IsRelaxedEnvVarName(from.Prefix+k)) != 0 {
			delete(vars, k)
		}
	}
	return vars, nil
}

// envValue resolves one env entry; ok is false when an optional source is
// missing and the variable is left out.
func (e *envResolver) envValue(field string, v corev1.EnvVar, lookup func(string) (string, bool), c *corev1.Container, addrs podAddresses, allocatable corev1.ResourceList) (value string, ok bool, err error) {
	from := v.ValueFrom
	switch {
	case v.Value != "" || from == nil:
		return expand(v.Value, lookup), true, nil
	case from.FieldRef != nil:
		value, err = podFieldValue(e.pod, from.FieldRef.FieldPath, addrs)
		return value, err == nil, wrapField(field+".valueFrom.fieldRef", err)
	case from.ResourceFieldRef != nil:
		target := c
		if name := from.ResourceFieldRef.ContainerName; name != "" {
			if target = containerNamed(e.pod, name); target == nil {
				return "", false, fieldErrorf(field+".valueFrom.resourceFieldRef.containerName", "no container %q in the pod", name)
			}
		}
		value, err = resourceFieldValue(from.ResourceFieldRef, target, allocatable)
		return value, err == nil, wrapField(field+".valueFrom.resourceFieldRef", err)
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		f := field + ".valueFrom.configMapKeyRef"
		cm, err := e.configMap(f, ref.Name, ref.Optional)
		if err != nil || cm == nil {
			return "", false, err
		}
		value, ok = cm.Data[ref.Key]
		return value, ok, missingKey(ok, ref.Optional, f, "configmap", ref.Name, ref.Key)
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		f := field + ".valueFrom.secretKeyRef"
		s, err := e.secret(f, ref.Name, ref.Optional)
		if err != nil || s == nil {
			return "", false, err
		}
		data, ok := s.Data[ref.Key]
		return string(data), ok, missingKey(ok, ref.Optional, f, "secret", ref.Name, ref.Key)
	}
	return "", false, fieldErrorf(field+".valueFrom", "no source skiff supports (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef)")
}

func (e *envResolver) configMap(field, name string, optional *bool) (*corev1.ConfigMap, error) {
	return readOnce(e.configMaps, name, func() (*corev1.ConfigMap, bool, error) {
		return getConfigMap(e.ctx, e.r, field, e.pod.Namespace, name, optional)
	})
}

func (e *envResolver) secret(field, name string, optional *bool) (*corev1.Secret, error) {
	return readOnce(e.secrets, name, func() (*corev1.Secret, bool, error) {
		return getSecret(e.ctx, e.r, field, e.pod.Namespace, name, optional)
	})
}

// readOnce returns cache[name], reading it first if needed; nil when the
// object is absent and optional.
func readOnce[T any](cache map[string]*T, name string, read func() (*T, bool, error)) (*T, error) {
	if obj, seen := cache[name]; seen {
		return obj, nil
	}
	obj, found, err := read()
	if err != nil {
		return nil, err
	}
	if !found {
		obj = nil
	}
	cache[name] = obj
	return obj, nil
}

// missingKey is the error for a key absent from its ConfigMap or Secret:
// none when present or optional.
func missingKey(present bool, optional *bool, field, kind, name, key string) error {
	if present || isTrue(optional) {
		return nil
	}
	return fieldErrorf(field, "%s %q has no key %q: add it or mark the reference optional", kind, name, key)
}

// wrapField makes err a FieldError for field; nil stays nil.
func wrapField(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}

// containerField is the path of the named container in the pod's spec, for
// error messages.
func containerField(pod *skiffcorev1.Pod, name string) string {
	for i, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return fmt.Sprintf("spec.initContainers[%d]", i)
		}
	}
	for i, c := range pod.Spec.Containers {
		if c.Name == name {
			return fmt.Sprintf("spec.containers[%d]", i)
		}
	}
	return fmt.Sprintf("container %q", name)
}

// orderedEnv keeps variables in the order they are first defined, so that the
// container's environment is the same on every pass.
type orderedEnv struct {
	names  []string
	values map[string]string
}

func (o *orderedEnv) set(name, value string) {
	if o.values == nil {
		o.values = map[string]string{}
	}
	if _, seen := o.values[name]; !seen {
		o.names = append(o.names, name)
	}
	o.values[name] = value
}

func (o *orderedEnv) lookup(name string) (string, bool) {
	v, ok := o.values[name]
	return v, ok
}

func (o *orderedEnv) pairs() []string {
	out := make([]string, len(o.names))
	for i, n := range o.names {
		out[i] = n + "=" + o.values[n]
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
