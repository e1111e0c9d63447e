// Package controllers holds skiff's control plane: one reconciler per kind,
// each in its own package, and the one place that registers them all with
// the manager.
package controllers

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Options are the settings that controllers share, filled from the
// manager's flags.
type Options struct{}

// controller is one reconciler's registration: a name for errors and logs,
// and the function that wires it into the manager.
type controller struct {
	name  string
	setup func(ctrl.Manager, Options) error
}

// registry lists every controller the manager runs. Each kind's issue adds
// its reconciler here, so the manager's main never changes.
var registry = []controller{}

// Every controller emits Events, as upstream's do.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers every controller in the registry with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	for _, c := range registry {
		if err := c.setup(mgr, opts); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", c.name, err)
		}
	}
	return nil
}

// Names lists the registered controllers, for the manager's start-up log.
func Names() []string {
	names := make([]string, 0, len(registry))
	for _, c := range registry {
		names = append(names, c.name)
	}
	return names
}
