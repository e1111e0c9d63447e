// Package controllers holds skiff's control plane: one reconciler per kind,
// each in its own package, and the one place that registers them all with
// the manager.
package controllers

import (
	"fmt"
	"slices"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	"skiff.dev/skiff/controllers/cronjob"
	"skiff.dev/skiff/controllers/daemonset"
	"skiff.dev/skiff/controllers/deployment"
	"skiff.dev/skiff/controllers/endpointslice"
	"skiff.dev/skiff/controllers/garbagecollector"
	"skiff.dev/skiff/controllers/job"
	"skiff.dev/skiff/controllers/localpath"
	"skiff.dev/skiff/controllers/nodeipam"
	"skiff.dev/skiff/controllers/nodelifecycle"
	"skiff.dev/skiff/controllers/podgc"
	"skiff.dev/skiff/controllers/replicaset"
	"skiff.dev/skiff/controllers/scheduler"
	"skiff.dev/skiff/controllers/serviceip"
	"skiff.dev/skiff/controllers/statefulset"
)

// Options are the controllers' settings, filled from the manager's flags.
type Options struct {
	// Controllers selects the controllers to run, as kube-controller-manager's
	// --controllers: "*" is every one, "name" enables one, "-name" disables
	// one. Empty means "*".
	Controllers []string

	Scheduler     scheduler.Config
	NodeLifecycle nodelifecycle.Config
	NodeIPAM      nodeipam.Config
	ServiceIP     serviceip.Config
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
	{"deployment", func(m ctrl.Manager, _ Options) error { return deployment.Setup(m) }},
	{"statefulset", func(m ctrl.Manager, _ Options) error { return statefulset.Setup(m) }},
	{"daemonset", func(m ctrl.Manager, _ Options) error { return daemonset.Setup(m) }},
	{"job", func(m ctrl.Manager, _ Options) error { return job.Setup(m) }},
	{"cronjob", func(m ctrl.Manager, _ Options) error { return cronjob.Setup(m) }},
	{"localpath", func(m ctrl.Manager, _ Options) error { return localpath.Setup(m) }},
	{"serviceip", func(m ctrl.Manager, o Options) error { return serviceip.Setup(m, o.ServiceIP) }},
	{"endpointslice", func(m ctrl.Manager, _ Options) error { return endpointslice.Setup(m) }},
}

// Every controller emits Events, as upstream's do.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Setup registers the selected controllers with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if err := checkSelection(opts.Controllers); err != nil {
		return err
	}
	for _, c := range registry {
		if !selected(c.name, opts.Controllers) {
			continue
		}
		if err := c.setup(mgr, opts); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", c.name, err)
		}
	}
	return nil
}

// Selected lists the controllers that opts runs, for the manager's
// start-up log.
func Selected(opts Options) []string {
	var names []string
	for _, c := range registry {
		if selected(c.name, opts.Controllers) {
			names = append(names, c.name)
		}
	}
	return names
}

// Names lists every registered controller.
func Names() []string {
	names := make([]string, 0, len(registry))
	for _, c := range registry {
		names = append(names, c.name)
	}
	return names
}

// selected reports whether the --controllers list enables name: named
// explicitly, or covered by "*" and not disabled with "-name".
func selected(name string, list []string) bool {
	if len(list) == 0 {
		return true
	}
	all := false
	for _, item := range list {
		switch item {
		case name:
			return true
		case "-" + name:
			return false
		case "*":
			all = true
		}
	}
	return all
}

// checkSelection refuses names that no controller has, so that a typo does
// not silently turn a controller off.
func checkSelection(list []string) error {
	for _, item := range list {
		name := strings.TrimPrefix(item, "-")
		if name == "*" {
			continue
		}
		if !slices.Contains(Names(), name) {
			return fmt.Errorf("--controllers: unknown controller %q; known: %s", name, strings.Join(Names(), ", "))
		}
	}
	return nil
}
