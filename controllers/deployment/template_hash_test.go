package deployment

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestTemplateHash(t *testing.T) {
	base := func() *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}}},
		}
	}
	h := templateHash(base(), nil)
	if h == "" || h != templateHash(base(), nil) {
		t.Fatalf("hash %q is not stable", h)
	}
	withHashLabel := base()
	withHashLabel.Labels[PodTemplateHashLabel] = "whatever"
	if templateHash(withHashLabel, nil) != h {
		t.Error("the hash label itself changed the hash")
	}
	changed := base()
	changed.Spec.Containers[0].Image = "nginx:2"
	if templateHash(changed, nil) == h {
		t.Error("a new image kept the hash")
	}
	if templateHash(base(), ptr.To[int32](1)) == h {
		t.Error("a collision count kept the hash")
	}
}
