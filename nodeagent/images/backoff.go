package images

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// The kubelet's image pull back-off: 10 s after the first failed pull of an
// image for a pod, doubling with each further failure, at most 5 minutes.
// A pod whose image cannot be pulled would otherwise hammer the registry.
const (
	pullBackOffInitial = 10 * time.Second
	pullBackOffMax     = 5 * time.Minute
)

// pullWait is one pod's image's back-off: no pull before failed+delay.
type pullWait struct {
	failed time.Time
	delay  time.Duration
}

func (w pullWait) retryAt() time.Time { return w.failed.Add(w.delay) }

// stale reports whether the last failure is so long ago that the next one
// starts the back-off over, as the kubelet forgets after twice the maximum.
func (w pullWait) stale(now time.Time) bool { return now.Sub(w.failed) > 2*pullBackOffMax }

// afterFailure is the wait after a pull that failed at now, given the wait
// before it (found reports whether there was one).
func afterFailure(prev pullWait, found bool, now time.Time) pullWait {
	if !found || prev.stale(now) {
		return pullWait{failed: now, delay: pullBackOffInitial}
	}
	return pullWait{failed: now, delay: min(2*prev.delay, pullBackOffMax)}
}

// PullBackOff is Ensure with the kubelet's back-off per pod and image:
// after a failed pull, the next tries within the back-off fail at once with
// ImagePullBackOff, without reaching the registry. It lives in memory, as
// the kubelet's does. It is safe for concurrent use.
type PullBackOff struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	waits map[string]pullWait
}

// NewPullBackOff returns a back-off that reads the time from clk, so that
// tests can move it.
func NewPullBackOff(clk clock.PassiveClock) *PullBackOff {
	return &PullBackOff{clock: clk, waits: map[string]pullWait{}}
}

func pullKey(pod types.UID, image string) string { return string(pod) + "_" + image }

// Ensure is Ensure for the pod with UID pod, refused with ImagePullBackOff
// ("Back-off pulling image "x"") while the pod's last pull of image is in
// back-off.
func (b *PullBackOff) Ensure(ctx context.Context, client *containerd.Client, pod types.UID, image string, policy corev1.PullPolicy, opts ...containerd.RemoteOpt) (containerd.Image, error) {
	key := pullKey(pod, image)
	img, err := ensure(ctx, client, image, policy, func() error {
		if b.RetryAt(pod, image).After(b.clock.Now()) {
			return &PullError{Reason: ErrImagePullBackOff, Message: fmt.Sprintf("Back-off pulling image %q", image)}
		}
		return nil
	}, opts)

	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil:
		delete(b.waits, key)
	case errors.Is(err, ErrImagePull):
		now := b.clock.Now()
		prev, found := b.waits[key]
		b.waits[key] = afterFailure(prev, found, now)
		b.forgetStale(now)
	}
	return img, err
}

// RetryAt is when the pod may next try to pull image; zero when it is not
// in back-off. The runtime looks at the pod again then (NextChange).
func (b *PullBackOff) RetryAt(pod types.UID, image string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.waits[pullKey(pod, image)]
	if !ok {
		return time.Time{}
	}
	return w.retryAt()
}

// forgetStale drops the waits of pods long gone, so that the map does not
// grow with every pod that ever failed a pull.
func (b *PullBackOff) forgetStale(now time.Time) {
	for k, w := range b.waits {
		if w.stale(now) {
			delete(b.waits, k)
		}
	}
}
