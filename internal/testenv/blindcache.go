package testenv

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
)

// PodBlindClient returns a client that writes to the test cluster but
// reads through a cache that never sees a pod: the stalest cache there is,
// for the tests that show a controller's expectations hold it back. The
// cache indexes pods, and the indexed kinds, by controller UID, as the
// controllers' own caches do. It runs until the test ends.
func (e *Env) PodBlindClient(t testing.TB, indexed ...client.Object) client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	blind, err := cache.New(e.Config, cache.Options{
		Scheme: e.Scheme,
		ByObject: map[client.Object]cache.ByObject{
			&skiffcorev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{"skiff-test/never": "seen"})},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range append([]client.Object{&skiffcorev1.Pod{}}, indexed...) {
		if err := controllerref.IndexByControllerUID(ctx, blind, obj); err != nil {
			t.Fatal(err)
		}
	}
	Run(t, "the pod-blind cache", blind.Start)
	t.Cleanup(cancel)
	if !blind.WaitForCacheSync(ctx) {
		t.Fatal("the pod-blind cache did not sync")
	}
	c, err := client.New(e.Config, client.Options{Scheme: e.Scheme, Cache: &client.CacheOptions{Reader: blind}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
