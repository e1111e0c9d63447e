// Package daemonset runs one pod on every eligible node.
package daemonset

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the DaemonSet controller with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
