package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/testenv"
)

// laggingJobCache is a manager's cached client whose Job reads can be held
// at an old copy, as a Job informer that lags behind the pod informer:
// the pods read are current, the Job is not. It counts the pods created.
type laggingJobCache struct {
	client.Client

	mu    sync.Mutex
	stale *skiffbatchv1.Job

	creates atomic.Int32
}

func (c *laggingJobCache) hold(job *skiffbatchv1.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stale = job.DeepCopy()
}

func (c *laggingJobCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.mu.Lock()
	stale := c.stale
	c.mu.Unlock()
	if j, ok := obj.(*skiffbatchv1.Job); ok && stale != nil && key == client.ObjectKeyFromObject(stale) {
		stale.DeepCopyInto(j)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *laggingJobCache) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*skiffcorev1.Pod); ok {
		c.creates.Add(1)
	}
	return c.Client.Create(ctx, obj, opts...)
}

// TestStaleJobCreatesNoPod drives the reconciler by hand through the race
// behind a flaky TestBackoffLimitPerIndex: a sync counts index 1's
// success and removes its pod's tracking finalizer; the next sync reads
// the pod cache, which shows the pod released, but a Job cache that does
// not have the count yet. That Job shows index 1 neither completed nor
// running, and the released pod is no longer for recordFinished to count:
// such a sync created a second pod for index 1 (its status write then
// conflicted, too late), which the Job's end deleted and counted failed.
// A sync creates pods only once it has checked that the Job it read is
// the apiserver's.
func TestStaleJobCreatesNoPod(t *testing.T) {
	ctx := context.Background()
	var c *laggingJobCache
	env.StartManager(t, func(m ctrl.Manager) error {
		c = &laggingJobCache{Client: m.GetClient()}
		return controllerref.IndexByControllerUID(ctx, m.GetFieldIndexer(), &skiffcorev1.Pod{})
	})
	r := &Reconciler{
		Client: c, APIReader: env.Client, Recorder: &events.FakeRecorder{}, Clock: clock.RealClock{},
		expectations: newExpectations(clock.RealClock{}),
		backoffs:     newBackoffs(time.Millisecond, time.Millisecond),
	}

	ns := newNamespace(t)
	job := createJob(t, ns, "stale", func(s *batchv1.JobSpec) {
		s.Completions = ptr.To[int32](2)
		s.Parallelism = ptr.To[int32](2)
		s.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		s.BackoffLimitPerIndex = ptr.To[int32](1)
	})
	// cached waits until the cache shows what the apiserver has: the Job as
	// it is, and pods that satisfy ok.
	cached := func(ok func([]skiffcorev1.Pod) error) {
		t.Helper()
		testenv.Eventually(t, timeout, func() error {
			var inCache skiffbatchv1.Job
			if err := c.Get(ctx, client.ObjectKeyFromObject(job), &inCache); err != nil {
				return err
			}
			if live := getJob(t, job); inCache.ResourceVersion != live.ResourceVersion {
				return fmt.Errorf("cached job at %s, apiserver at %s", inCache.ResourceVersion, live.ResourceVersion)
			}
			var pods skiffcorev1.PodList
			if err := c.List(ctx, &pods, client.InNamespace(ns)); err != nil {
				return err
			}
			return ok(pods.Items)
		})
	}
	sync := func() error {
		t.Helper()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(job)})
		return err
	}

	// The first sync creates a pod per index. The cache shows them, and
	// the pod events would mark their creations seen.
	if err := sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	var one skiffcorev1.Pod
	cached(func(pods []skiffcorev1.Pod) error {
		i := slices.IndexFunc(pods, func(p skiffcorev1.Pod) bool { return p.Annotations[labelCompletionIndex] == "1" })
		if len(pods) != 2 || i < 0 {
			return fmt.Errorf("%d pods in the cache, want one per index", len(pods))
		}
		one = pods[i]
		return nil
	})
	job = getJob(t, job)
	r.expectations.creationObserved(job.UID)
	r.expectations.creationObserved(job.UID)

	// Index 1 succeeds; the Job as it is now is the one the lagging
	// cache will keep showing.
	finishPod(t, &one, corev1.PodSucceeded)
	cached(func(pods []skiffcorev1.Pod) error {
		for _, p := range pods {
			if p.UID == one.UID && p.Status.Phase != corev1.PodSucceeded {
				return fmt.Errorf("the cache does not show index 1 succeeded yet")
			}
		}
		return nil
	})
	before := getJob(t, job)

	// A sync counts it and removes its finalizer; the cache shows that.
	if err := sync(); err != nil {
		t.Fatalf("counting sync: %v", err)
	}
	cached(func(pods []skiffcorev1.Pod) error {
		for _, p := range pods {
			if p.UID == one.UID && hasTrackingFinalizer(&p) {
				return fmt.Errorf("the cache still shows index 1's finalizer")
			}
		}
		return nil
	})
	r.expectations.releaseObserved(job.UID, one.UID)
	if got := getJob(t, job); got.Status.CompletedIndexes != "1" || got.Status.Succeeded != 1 {
		t.Fatalf("after the counting sync: completedIndexes %q succeeded %d, want 1 and 1", got.Status.CompletedIndexes, got.Status.Succeeded)
	}

	// The Job cache lags: the sync reads the Job from before the count.
	c.hold(before)
	createdBefore := c.creates.Load()
	if err := sync(); !errors.Is(err, errStaleJob) {
		t.Errorf("sync on the stale Job: error %v, want errStaleJob", err)
	}
	if n := c.creates.Load() - createdBefore; n != 0 {
		t.Errorf("a sync on a stale Job created %d pods, want 0", n)
	}
	if n := len(podsOf(t, job)); n != 2 {
		t.Errorf("%d pods exist, want 2 (one per index)", n)
	}

	// Once the cache catches up, the Job goes on from its real state.
	c.hold(getJob(t, job))
	if err := sync(); err != nil {
		t.Fatalf("sync on the current Job: %v", err)
	}
	if n := c.creates.Load() - createdBefore; n != 0 {
		t.Errorf("a sync on the current Job created %d pods, want 0: index 0 runs, index 1 is done", n)
	}
	if got := getJob(t, job); got.Status.CompletedIndexes != "1" || got.Status.Succeeded != 1 || got.Status.Failed != 0 {
		t.Errorf("status: completedIndexes %q succeeded %d failed %d, want 1 1 0", got.Status.CompletedIndexes, got.Status.Succeeded, got.Status.Failed)
	}
}
