package testenv

import (
	"context"
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
	mgr, err := ctrl.NewManager(e.fastConfig(), ctrl.Options{
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("the manager failed: %v", err)
		}
	}()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("the manager did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// fastConfig is the test cluster's config without client-side rate
// limiting, which would otherwise pace every suite at client-go's default
// 5 requests a second.
func (e *Env) fastConfig() *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}
