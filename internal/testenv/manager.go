package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// StartManager runs a controller-runtime manager against the test cluster
// with the controllers that setup registers, and stops it when the test
// ends. Metrics and probes are off, and controller names may repeat, so that
// a test can start a second manager after stopping the first (a restart).
// The returned stop ends the manager early and waits for it.
func (e *Env) StartManager(t testing.TB, setup func(ctrl.Manager) error) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(e.FastConfig(), ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating a manager: %v", err)
	}
	if err := setup(mgr); err != nil {
		t.Fatalf("registering controllers: %v", err)
	}
	return Run(t, "the manager", mgr.Start)
}

// Run runs start in the background until the test ends, failing the test
// if it returns an error. The returned stop ends it early and waits for it,
// as when its process exits; a restart test calls stop and Run again.
func Run(t testing.TB, what string, start func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := start(ctx); err != nil {
			t.Errorf("%s failed: %v", what, err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop within 30s", what)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// FastConfig is the test cluster's config with client-side rate limiting
// lifted, which would otherwise pace every suite at client-go's default 5
// requests a second.
func (e *Env) FastConfig() *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}
