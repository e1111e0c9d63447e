package containerd

import (
	"context"
	"errors"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/images"
)

// pullImages makes images present as each container's imagePullPolicy
// says, with the kubelet's per-pod pull back-off.
type pullImages struct{ backoff *images.PullBackOff }

// PullImages is the runtime's Images: imagePullPolicy honoured, pulls from
// registries that can be reached, and ErrImagePull then ImagePullBackOff
// for images that cannot be had.
func PullImages(clk clock.PassiveClock) Images {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &pullImages{backoff: images.NewPullBackOff(clk)}
}

func (p *pullImages) Ensure(ctx context.Context, client *containerd.Client, pod *skiffcorev1.Pod, c *corev1.Container) (containerd.Image, error) {
	return p.backoff.Ensure(ctx, client, pod.UID, c.Image, c.ImagePullPolicy)
}

func (p *pullImages) RetryAt(pod *skiffcorev1.Pod, c *corev1.Container) time.Time {
	return p.backoff.RetryAt(pod.UID, c.Image)
}

// imageReason is the kubelet's waiting reason for an image error.
func imageReason(err error) string {
	var pe *images.PullError
	if errors.As(err, &pe) && pe.Reason != nil {
		return pe.Reason.Error()
	}
	return reasonErrImagePull
}
