// Package nodelifecycle watches node heartbeats: a node whose Lease goes
// stale becomes Ready=Unknown and tainted unreachable, and its pods are
// evicted once their tolerations run out.
//
// Two reconcilers share the package, as upstream splits the node lifecycle
// controller from the taint eviction controller: NodeReconciler turns
// heartbeats and conditions into conditions and taints, and
// EvictionReconciler turns NoExecute taints into evictions.
package nodelifecycle

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"skiff.dev/skiff/internal/index"
	"skiff.dev/skiff/internal/recorder"
)

// Config is the node lifecycle controller's configuration.
type Config struct {
	// NodeMonitorGracePeriod is how long a node's Lease may go unrenewed
	// before the node is marked Ready=Unknown (upstream: 50s).
	NodeMonitorGracePeriod time.Duration
	// DefaultTolerationSeconds is how long pods that do not tolerate the
	// not-ready and unreachable taints stay on such a node, as upstream's
	// DefaultTolerationSeconds admission plugin gives them (300).
	DefaultTolerationSeconds int64
}

// Setup registers the node lifecycle and taint eviction controllers with
// the manager.
func Setup(mgr ctrl.Manager, cfg Config) error {
	return setup(mgr, cfg, clock.RealClock{})
}

func setup(mgr ctrl.Manager, cfg Config, clk clock.Clock) error {
	if cfg.NodeMonitorGracePeriod <= 0 {
		return fmt.Errorf("--node-monitor-grace-period must be positive, got %s", cfg.NodeMonitorGracePeriod)
	}
	if cfg.DefaultTolerationSeconds < 0 {
		return fmt.Errorf("--default-toleration-seconds must be >= 0, got %d", cfg.DefaultTolerationSeconds)
	}
	if err := index.PodsByNodeName(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	nodes := &NodeReconciler{
		Client:      mgr.GetClient(),
		Recorder:    recorder.New(mgr, "node-controller"),
		Clock:       clk,
		GracePeriod: cfg.NodeMonitorGracePeriod,
	}
	if err := nodes.SetupWithManager(mgr); err != nil {
		return err
	}
	evictions := &EvictionReconciler{
		Client:                   mgr.GetClient(),
		Recorder:                 recorder.New(mgr, "taint-eviction-controller"),
		Clock:                    clk,
		DefaultTolerationSeconds: cfg.DefaultTolerationSeconds,
	}
	return evictions.SetupWithManager(mgr)
}
