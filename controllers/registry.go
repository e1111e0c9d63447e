// Package controllers holds skiff's control plane: one reconciler per kind,
// each in its own package, and the one place that registers them all with
// the manager.
package controllers

import (
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"

	"skiff.dev/skiff/controllers/garbagecollector"
	"skiff.dev/skiff/controllers/nodeipam"
	"skiff.dev/skiff/controllers/nodelifecycle"
	"skiff.dev/skiff/controllers/podgc"
	"skiff.dev/skiff/controllers/replicaset"
	"skiff.dev/skiff/controllers/scheduler"
)

// Options are the controllers' settings, filled from the manager's flags.
type Options struct {
	Scheduler     scheduler.Config
	NodeLifecycle nodelifecycle.Config
	NodeIPAM      nodeipam.Config
}

// controller is one reconciler's registration: a name for errors and logs,
// and the function that wires it into the manager.
type controller struct {
	name  string
	setup func(ctrl.Manager, Options) error
}

// registry lists every controller the manager runs. Each kind's issue adds
// its reconciler here, so the manager's main never changes.
var registry = []controller{
	{"scheduler", func(m ctrl.Manager, o Options) error { return scheduler.Setup(m, o.Scheduler) }},
	{"replicaset", func(m ctrl.Manager, _ Options) error { return replicaset.Setup(m) }},
	{"garbagecollector", func(m ctrl.Manager, _ Options) error { return garbagecollector.Setup(m) }},
	{"nodelifecycle", func(m ctrl.Manager, o Options) error { return nodelifecycle.Setup(m, o.NodeLifecycle) }},
	{"nodeipam", func(m ctrl.Manager, o Options) error { return nodeipam.Setup(m, o.NodeIPAM) }},
	{"podgc", func(m ctrl.Manager, _ Options) error { return podgc.Setup(m) }},
}

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
