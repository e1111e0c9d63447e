// Package scheduler places pods that have no spec.nodeName on a node: it
// filters the nodes, scores the ones that pass, and binds the pod to the best.
package scheduler

import ctrl "sigs.k8s.io/controller-runtime"

// Config is the scheduler's configuration, from the manager's flags.
type Config struct {
	// Scoring is LeastAllocated (spread pods out, the default) or
	// MostAllocated (bin packing).
	Scoring string
	// PercentageOfNodesToScore bounds how many feasible nodes are scored
	// for each pod, as upstream's setting; 0 picks upstream's adaptive value.
	PercentageOfNodesToScore int32
	// BindWorkers is how many bindings may be in flight at once.
	BindWorkers int
}

// Setup registers the scheduler with the manager.
func Setup(mgr ctrl.Manager, cfg Config) error { return nil }
