package volumes

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// defaultFileMode is the mode of a volume file when neither the item nor the
// volume sets one, as upstream's API defaulting makes it.
const defaultFileMode = 0o644

// payloadSource computes the files of the volumes whose content comes from
// the apiserver (configMap, secret, downwardAPI, projected).
type payloadSource struct {
	ctx         context.Context
	r           Reader
	pod         *skiffcorev1.Pod
	addrs       podAddresses
	allocatable corev1.ResourceList
}

// volumePayload is the payload of an API-data volume; field is the volume's
// path in the spec, e.g. "spec.volumes[2]".
func (s payloadSource) volumePayload(field string, v *corev1.Volume) (payload, error) {
	switch {
	case v.ConfigMap != nil:
		return s.configMap(field+".configMap", v.ConfigMap, v.ConfigMap.DefaultMode)
	case v.Secret != nil:
		return s.secret(field+".secret", v.Secret, v.Secret.DefaultMode)
	case v.DownwardAPI != nil:
		return s.downwardAPI(field+".downwardAPI", v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	case v.Projected != nil:
		return s.projected(field+".projected", v.Projected)
	}
	return nil, fmt.Errorf("%s: not an API-data volume", field)
}

func (s payloadSource) configMap(field string, src *corev1.ConfigMapVolumeSource, defaultMode *int32) (payload, error) {
	cm, found, err := getConfigMap(s.ctx, s.r, field, s.pod.Namespace, src.Name, src.Optional)
	if err != nil || !found {
		return payload{}, err
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyedPayload(field, "configmap", src.Name, data, src.Items, defaultMode, src.Optional)
}

func (s payloadSource) secret(field string, src *corev1.SecretVolumeSource, defaultMode *int32) (payload, error) {
	sec, found, err := getSecret(s.ctx, s.r, field, s.pod.Namespace, src.SecretName, src.Optional)
	if err != nil || !found {
		return payload{}, err
	}
	return keyedPayload(field, "secret", src.SecretName, sec.Data, src.Items, defaultMode, src.Optional)
}

// keyedPayload lays out a ConfigMap's or Secret's data as upstream does:
// every key as a file of that name, or, when items are given, only those
// keys at their paths and modes. A listed key that is missing is an error
// unless the reference is optional.
func keyedPayload(field, kind, name string, data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional *bool) (payload, error) {
	mode := fileMode(nil, defaultMode)
	p := payload{}
	if len(items) == 0 {
		for k, v := range data {
			p[k] = file{data: v, mode: mode}
		}
		return p, nil
	}
	for i, item := range items {
		v, ok := data[item.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return nil, fieldErrorf(fmt.Sprintf("%s.items[%d].key", field, i), "%s %q has no key %q: add it or mark the volume optional", kind, name, item.Key)
		}
		if err := validatePayloadPath(item.Path); err != nil {
			return nil, wrapField(fmt.Sprintf("%s.items[%d].path", field, i), err)
		}
		p[item.Path] = file{data: v, mode: fileMode(item.Mode, defaultMode)}
	}
	return p, nil
}

func (s payloadSource) downwardAPI(field string, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) (payload, error) {
	p := payload{}
	for i, item := range items {
		itemField := fmt.Sprintf("%s.items[%d]", field, i)
		value, err := s.downwardValue(itemField, item)
		if err != nil {
			return nil, err
		}
		if err := validatePayloadPath(item.Path); err != nil {
			return nil, wrapField(itemField+".path", err)
		}
		p[item.Path] = file{data: []byte(value), mode: fileMode(item.Mode, defaultMode)}
	}
	return p, nil
}

func (s payloadSource) downwardValue(field string, item corev1.DownwardAPIVolumeFile) (string, error) {
	switch {
	case item.FieldRef != nil:
		v, err := podFieldValue(s.pod, item.FieldRef.FieldPath, s.addrs)
		return v, wrapField(field+".fieldRef", err)
	case item.ResourceFieldRef != nil:
		name := item.ResourceFieldRef.ContainerName
		c := containerNamed(s.pod, name)
		if c == nil {
			return "", fieldErrorf(field+".resourceFieldRef.containerName", "no container %q in the pod", name)
		}
		v, err := resourceFieldValue(item.ResourceFieldRef, c, s.allocatable)
		return v, wrapField(field+".resourceFieldRef", err)
	}
	return "", fieldErrorf(field, "needs a fieldRef or a resourceFieldRef")
}

// projected merges the payloads of its sources into one volume; a later
// source's file wins over an earlier one's at the same path.
func (s payloadSource) projected(field string, src *corev1.ProjectedVolumeSource) (payload, error) {
	p := payload{}
	for i, source := range src.Sources {
		sf := fmt.Sprintf("%s.sources[%d]", field, i)
		var part payload
		var err error
		switch {
		case source.ConfigMap != nil:
			cm := source.ConfigMap
			part, err = s.configMap(sf+".configMap", &corev1.ConfigMapVolumeSource{LocalObjectReference: cm.LocalObjectReference, Items: cm.Items, Optional: cm.Optional}, src.DefaultMode)
		case source.Secret != nil:
			sec := source.Secret
			part, err = s.secret(sf+".secret", &corev1.SecretVolumeSource{SecretName: sec.Name, Items: sec.Items, Optional: sec.Optional}, src.DefaultMode)
		case source.DownwardAPI != nil:
			part, err = s.downwardAPI(sf+".downwardAPI", source.DownwardAPI.Items, src.DefaultMode)
		default:
			err = fieldErrorf(sf, "skiff's node agent projects only configMap, secret and downwardAPI sources")
		}
		if err != nil {
			return nil, err
		}
		for k, v := range part {
			p[k] = v
		}
	}
	return p, nil
}

// fileMode is the item's mode, else the volume's default mode, else 0644.
func fileMode(item, volumeDefault *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & os.ModePerm
	case volumeDefault != nil:
		return os.FileMode(*volumeDefault) & os.ModePerm
	}
	return defaultFileMode
}
