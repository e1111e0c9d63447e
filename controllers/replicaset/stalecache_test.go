package replicaset

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/expectations"
	"skiff.dev/skiff/internal/testenv"
)

// TestExpectationsHoldAStaleCache drives the reconciler by hand over the
// stalest cache there is: one that never sees a pod. On a test cluster the
// cache catches up within milliseconds, so the scale-up scenarios rarely
// give a stale read; here every read is stale, and only the expectations
// stand between a second sync and duplicate pods. After
// expectations.Timeout, as upstream, the ReplicaSet syncs anyway.
func TestExpectationsHoldAStaleCache(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	blind, err := cache.New(env.Config, cache.Options{
		Scheme: env.Scheme,
		ByObject: map[client.Object]cache.ByObject{
			&skiffcorev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{"skiff-test/never": "seen"})},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllerref.IndexByControllerUID(ctx, blind, &skiffcorev1.Pod{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = blind.Start(ctx) }()
	defer func() { cancel(); <-done }()
	if !blind.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	c, err := client.New(env.Config, client.Options{Scheme: env.Scheme, Cache: &client.CacheOptions{Reader: blind}})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	r := &Reconciler{Client: c, APIReader: env.Client, Recorder: &events.FakeRecorder{}, Clock: clk, expectations: expectations.New(clk)}

	ns := namespace(t)
	rs := newReplicaSet(t, ns, "stale", 3, nil)
	testenv.Eventually(t, timeout, func() error { return c.Get(ctx, client.ObjectKeyFromObject(rs), rs) })
	sync := func(wantPods int) {
		t.Helper()
		// The cache is blind to pods only: let it catch up with the
		// ReplicaSet's last status write, which would otherwise conflict.
		testenv.Eventually(t, timeout, func() error {
			var cached, fresh skiffappsv1.ReplicaSet
			if err := c.Get(ctx, client.ObjectKeyFromObject(rs), &cached); err != nil {
				return err
			}
			fresh.ObjectMeta = rs.ObjectMeta
			mustGet(t, &fresh)
			if cached.ResourceVersion != fresh.ResourceVersion {
				return fmt.Errorf("cached ReplicaSet at %s, apiserver at %s", cached.ResourceVersion, fresh.ResourceVersion)
			}
			return nil
		})
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rs)}); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if n := countPods(t, ns); n != wantPods {
			t.Fatalf("%d pods after the sync, want %d", n, wantPods)
		}
	}

	sync(3) // creates the three pods, and expects them
	sync(3) // the cache shows none, but the creations are still expected
	clk.Step(expectations.Timeout - time.Second)
	sync(3) // still within the timeout
	clk.Step(2 * time.Second)
	sync(6) // expired: the sync trusts its (stale) cache again
	assertOwnedPods(t, rs, 6)
	if r.expectations.Satisfied(rs.UID) {
		t.Fatal("the three new creations are not awaited")
	}
}
