// Package describe is `kubectl skiff describe`: kubectl describe's view of
// skiff's Pods, Nodes, Services and workloads, with their recent Events.
//
// skiff's kinds carry upstream's spec and status, so each object is
// converted to its upstream twin and laid out by kubectl's own describer
// for that kind (k8s.io/kubectl/pkg/describe), which reads it, the objects
// it shows along with it and the real Events through a view
// (view.go) that serves what this command read from the cluster.
package describe

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	kubectldescribe "k8s.io/kubectl/pkg/describe"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// NewCommand returns `describe`.
func NewCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "describe (TYPE [NAME_PREFIX | -l label] | TYPE/NAME)",
		Short: "Show details of a specific resource or group of resources",
		Long: `Show details of skiff objects, with their recent Events, as kubectl describe
does: pods, nodes, services, deployments, replicasets, statefulsets,
daemonsets, jobs and cronjobs.

A pending pod shows why the scheduler could not place it: its PodScheduled
condition and the scheduler's FailedScheduling Event.`,
		Example: `  # Describe a pod
  kubectl skiff describe pod web-7d9f8-abcde

  # Describe every pod whose name starts with web
  kubectl skiff describe pods web

  # Describe a node, with its pods' requests and limits
  kubectl skiff describe node/n1

  # Describe the deployments labelled app=web in every namespace
  kubectl skiff describe deploy -l app=web -A`,
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			c, err := f.Client()
			if err != nil {
				return err
			}
			ns, err := f.Namespace()
			if err != nil {
				return err
			}
			o.namespace, o.allNamespaces = ns, f.AllNamespaces
			return o.run(cmd.Context(), c, streams, targets)
		},
	}
	cmd.Flags().StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.(e.g. -l key1=value1,key2=value2,key3 in (value3)). Matching objects must satisfy all of the specified label constraints.")
	cmd.Flags().BoolVar(&o.showEvents, "show-events", true, "If true, display events related to the described object.")
	return cmd
}

// target is one argument: a kind and a name, or a name prefix (byPrefix),
// or no name for every object of the kind.
type target struct {
	kind     kind
	name     string
	byPrefix bool
}

// parseTargets reads kubectl describe's arguments: TYPE alone, TYPE
// followed by names or name prefixes, or TYPE/NAME pairs.
func parseTargets(args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource to describe: kubectl skiff describe (TYPE [NAME_PREFIX | -l label] | TYPE/NAME)")
	}
	parsed, err := cli.ParseResourceArgs(args, "kubectl skiff describe pod/web")
	if err != nil {
		return nil, err
	}
	out := make([]target, 0, len(parsed))
	for _, p := range parsed {
		k, err := findKind(p.Type)
		if err != nil {
			return nil, err
		}
		// kubectl describe takes a separately typed name as a prefix.
		out = append(out, target{kind: k, name: p.Name, byPrefix: p.Separate && p.Name != ""})
	}
	return out, nil
}

// options are one run's flags and scope.
type options struct {
	selector      string
	showEvents    bool
	namespace     string
	allNamespaces bool
}

// run finds the targets' objects and prints each one's description,
// separated by blank lines as kubectl does; it goes on after an object it
// cannot find, and returns the errors joined.
func (o options) run(ctx context.Context, c client.Reader, streams cli.Streams, targets []target) error {
	var errs []string
	described := 0
	for _, t := range targets {
		objs, err := o.find(ctx, c, t)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		for _, obj := range objs {
			s, err := o.describe(ctx, c, t.kind, obj)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if described > 0 {
				fmt.Fprint(streams.Out, "\n\n")
			}
			fmt.Fprint(streams.Out, s)
			described++
		}
	}
	if described == 0 && len(errs) == 0 {
		if o.allNamespaces {
			fmt.Fprintln(streams.ErrOut, "No resources found")
		} else {
			fmt.Fprintf(streams.ErrOut, "No resources found in %s namespace.\n", o.namespace)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\nerror: "))
	}
	return nil
}

// find reads the objects a target names: one by name; else, for a name
// that is not an object's, every object whose name starts with it; else
// every object of the kind in scope that the selector matches.
func (o options) find(ctx context.Context, c client.Reader, t target) ([]client.Object, error) {
	ns := ""
	if t.kind.namespaced && !o.allNamespaces {
		ns = o.namespace
	}
	if t.name != "" {
		if o.allNamespaces && t.kind.namespaced {
			return nil, fmt.Errorf("a resource cannot be retrieved by name across all namespaces: use -n NAMESPACE")
		}
		obj, err := o.get(ctx, c, t.kind, ns, t.name)
		if err == nil || !t.byPrefix || !apierrors.IsNotFound(err) {
			return []client.Object{obj}, err
		}
		matched, listErr := o.list(ctx, c, t.kind, ns, func(name string) bool { return strings.HasPrefix(name, t.name) })
		if listErr != nil || len(matched) == 0 {
			return nil, err // the NotFound, as kubectl reports it
		}
		return matched, nil
	}
	return o.list(ctx, c, t.kind, ns, func(string) bool { return true })
}

func (o options) get(ctx context.Context, c client.Reader, k kind, ns, name string) (client.Object, error) {
	obj := k.newObject()
	return obj, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
}

// list reads the kind's objects in ns (every namespace for "") that the
// selector matches and whose name keep accepts.
func (o options) list(ctx context.Context, c client.Reader, k kind, ns string, keep func(string) bool) ([]client.Object, error) {
	sel, err := labels.Parse(o.selector)
	if err != nil {
		return nil, fmt.Errorf("parsing the selector %q: %w", o.selector, err)
	}
	list := k.newList()
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	var out []client.Object
	for _, item := range items {
		obj := item.(client.Object)
		if keep(obj.GetName()) {
			out = append(out, obj)
		}
	}
	return out, nil
}

// describe lays out one object with kubectl's describer for its upstream
// twin, reading it and what it shows along with it from a view.
func (o options) describe(ctx context.Context, c client.Reader, k kind, obj client.Object) (string, error) {
	v := newView()
	up := k.upstream(obj)
	if err := v.add(up); err != nil {
		return "", err
	}
	if k.related != nil {
		rel, err := k.related(ctx, c, obj)
		if err != nil {
			return "", err
		}
		if err := v.add(rel...); err != nil {
			return "", err
		}
	}
	if o.showEvents {
		evs, err := events(ctx, c, obj)
		if err != nil {
			return "", err
		}
		if err := v.add(evs...); err != nil {
			return "", err
		}
	}
	gvks, _, err := scheme.Scheme.ObjectKinds(up)
	if err != nil {
		return "", err
	}
	d, ok := kubectldescribe.DescriberFor(gvks[0].GroupKind(), v.config())
	if !ok {
		return "", fmt.Errorf("kubectl has no describer for %s", gvks[0].Kind)
	}
	return d.Describe(obj.GetNamespace(), obj.GetName(), kubectldescribe.DescriberSettings{ShowEvents: o.showEvents, ChunkSize: 500})
}
