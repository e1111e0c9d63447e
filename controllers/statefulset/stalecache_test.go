package statefulset

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/expectations"
	"skiff.dev/skiff/internal/testenv"
)

// podWrites counts the pod creations a client sends.
type podWrites struct {
	client.Client
	creates atomic.Int32
}

func (c *podWrites) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*skiffcorev1.Pod); ok {
		c.creates.Add(1)
	}
	return c.Client.Create(ctx, obj, opts...)
}

// TestExpectationsHoldAStaleCache drives the reconciler by hand over the
// stalest cache there is: one that never sees a pod. The pods' stable
// names make a duplicate impossible, but without expectations every sync
// would send the creations again. With them, a second sync sends nothing
// until the creations are seen, or until expectations.Timeout, as
// upstream, after which the set trusts its (stale) cache again.
func TestExpectationsHoldAStaleCache(t *testing.T) {
	ctx := context.Background()
	c := &podWrites{Client: env.PodBlindClient(t, &appsv1.ControllerRevision{})}
	clk := clocktesting.NewFakeClock(time.Now())
	r := &Reconciler{Client: c, APIReader: env.Client, Recorder: &events.FakeRecorder{}, Clock: clk, expectations: expectations.New(clk)}

	ns := namespace(t)
	set := newSet(t, ns, "stale", 3, func(s *skiffappsv1.StatefulSet) {
		s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		s.Spec.Template.Spec.NodeSelector = map[string]string{"nowhere": "true"}
	})
	sync := func(wantCreates int32) {
		t.Helper()
		// The cache is blind to pods only: let it catch up with the set's
		// last status write, which would otherwise conflict.
		testenv.Eventually(t, timeout, func() error {
			var inCache skiffappsv1.StatefulSet
			if err := c.Get(ctx, client.ObjectKeyFromObject(set), &inCache); err != nil {
				return err
			}
			mustGet(t, set)
			if inCache.ResourceVersion != set.ResourceVersion {
				return fmt.Errorf("cached set at %s, apiserver at %s", inCache.ResourceVersion, set.ResourceVersion)
			}
			return nil
		})
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(set)}); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if got := c.creates.Load(); got != wantCreates {
			t.Fatalf("%d pod creations sent after the sync, want %d", got, wantCreates)
		}
		if got := podNames(listPods(t, ns)); len(got) != 3 {
			t.Fatalf("pods %v, want stale-0..2", got)
		}
	}

	sync(3) // creates the three pods, and expects them
	sync(3) // the cache shows none, but the creations are still expected
	clk.Step(expectations.Timeout - time.Second)
	sync(3) // still within the timeout
	clk.Step(2 * time.Second)
	sync(6) // expired: the set trusts its cache and tries again; the names hold
	if !r.expectations.Satisfied(set.UID) {
		t.Fatal("creations refused as already existing are still awaited")
	}
}
