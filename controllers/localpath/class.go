package localpath

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ClassName and Provisioner name skiff's storage class and the provisioner
// that serves it, as rancher's local-path-provisioner names its own.
const (
	ClassName   = "local-path"
	Provisioner = "skiff.dev/local-path"
)

// isDefaultClassAnnotation marks the class that claims without a
// storageClassName get, as upstream.
const isDefaultClassAnnotation = "storageclass.kubernetes.io/is-default-class"

// DefaultClass is the StorageClass the controller creates when it is
// missing: local directories only exist once a node is chosen, so binding
// waits for the first consumer; a claim's directory goes with its claim.
// It is the default class, so that a StatefulSet's volumeClaimTemplates
// work without naming one.
func DefaultClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{isDefaultClassAnnotation: "true"},
		},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// classOf returns the class that provisions the claim: the one it names,
// or the default class when it names none. nil means the claim is not
// this provisioner's business (another provisioner's class, no default
// class, or a class that does not exist yet: its creation requeues).
// An empty storageClassName ("") asks for no class at all, as upstream.
func classOf(claim *corev1.PersistentVolumeClaim, classes []storagev1.StorageClass) *storagev1.StorageClass {
	var class *storagev1.StorageClass
	if claim.Spec.StorageClassName == nil {
		class = defaultClass(classes)
	} else if i := slices.IndexFunc(classes, func(c storagev1.StorageClass) bool { return c.Name == *claim.Spec.StorageClassName }); i >= 0 {
		class = &classes[i]
	}
	if class == nil || class.Provisioner != Provisioner {
		return nil
	}
	return class
}

// defaultClass returns the default class; when several claim to be, the
// newest wins (then the name decides), as upstream's admission picks.
func defaultClass(classes []storagev1.StorageClass) *storagev1.StorageClass {
	var best *storagev1.StorageClass
	for i := range classes {
		c := &classes[i]
		if c.Annotations[isDefaultClassAnnotation] != "true" {
			continue
		}
		if best == nil || newer(c, best) {
			best = c
		}
	}
	return best
}

func newer(a, b *storagev1.StorageClass) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return cmp.Less(a.Name, b.Name)
}

// waitsForConsumer reports whether the class binds only once a pod using
// the claim is on a node. Immediate is upstream's default.
func waitsForConsumer(class *storagev1.StorageClass) bool {
	return ptr.Deref(class.VolumeBindingMode, storagev1.VolumeBindingImmediate) == storagev1.VolumeBindingWaitForFirstConsumer
}
