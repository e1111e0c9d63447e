package nodes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// drainOptions are `drain`'s flags.
type drainOptions struct {
	rules           drainRules
	gracePeriod     int
	timeout         time.Duration
	podSelector     string
	disableEviction bool
	dry             dryRun
	// pollInterval is how often drain looks whether the pods are gone.
	pollInterval time.Duration
}

// NewDrainCommand returns `drain NODE...`: cordon, then delete the node's
// pods and wait until they are gone.
func NewDrainCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := drainOptions{pollInterval: time.Second}
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain node in preparation for maintenance",
		Long: `Drain a skiff node in preparation for maintenance, as kubectl drain does.

The node is cordoned first, so that nothing new is scheduled there. Then its
pods are deleted, except DaemonSet-managed ones (which their DaemonSet would
put back at once), and drain waits until each is gone: a pod's node agent
stops it with its grace period, and its controller recreates it elsewhere.

Drain refuses, deleting nothing, when the node has DaemonSet-managed pods
(without --ignore-daemonsets), pods with emptyDir data (without
--delete-emptydir-data) or pods no controller would recreate (without
--force). Finished pods are always deleted.

skiff has no eviction API and no PodDisruptionBudgets: pods are deleted, not
evicted, so nothing holds a drain back for an application's availability.

With --dry-run=client (or server) drain says what it would do, by the same
rules, and changes nothing.`,
		Example: `  # Drain node n1, leaving its DaemonSet pods
  kubectl skiff drain n1 --ignore-daemonsets

  # Drain n1 even of pods without a controller, giving up after 5 minutes
  kubectl skiff drain n1 --ignore-daemonsets --force --timeout=5m

  # See which pods a drain of n1 would delete, changing nothing
  kubectl skiff drain n1 --ignore-daemonsets --dry-run=client`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("node name required: kubectl skiff drain NODE")
			}
			if _, err := labels.Parse(o.podSelector); err != nil {
				return fmt.Errorf("--pod-selector %q: %w", o.podSelector, err)
			}
			c, err := f.Client()
			if err != nil {
				return err
			}
			var failed []error
			var pending []string
			for _, name := range args {
				if err := o.drain(cmd.Context(), f, c, streams, name); err != nil {
					fmt.Fprintf(streams.ErrOut, "error: unable to drain node %q due to error: %s, continuing command...\n", name, err)
					failed, pending = append(failed, err), append(pending, name)
				}
			}
			if len(pending) > 0 {
				fmt.Fprintln(streams.ErrOut, "There are pending nodes to be drained:")
				for _, name := range pending {
					fmt.Fprintf(streams.ErrOut, " %s\n", name)
				}
			}
			return errors.Join(failed...)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.rules.IgnoreDaemonSets, "ignore-daemonsets", false, "Ignore DaemonSet-managed pods.")
	fl.BoolVar(&o.rules.DeleteEmptyDirData, "delete-emptydir-data", false, "Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).")
	fl.BoolVar(&o.rules.Force, "force", false, "Continue even if there are pods that do not declare a controller.")
	fl.IntVar(&o.gracePeriod, "grace-period", -1, "Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used; a value shorter than the pod's own is written to its spec.terminationGracePeriodSeconds, which its node agent reads.")
	fl.DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before giving up, zero means infinite")
	fl.StringVar(&o.podSelector, "pod-selector", "", "Label selector to filter pods on the node")
	fl.BoolVar(&o.disableEviction, "disable-eviction", false, "Delete pods instead of evicting them. skiff has no eviction API, so pods are always deleted; this only silences the note that says so.")
	addDryRunFlag(fl, &o.dry)
	return cmd
}

// drain cordons one node, deletes its pods as the rules allow, and waits
// until they are gone; a dry run only says so.
func (o drainOptions) drain(ctx context.Context, f *cli.Factory, c client.Client, streams cli.Streams, name string) error {
	if err := setUnschedulable(ctx, f, c, streams, name, true, o.dry); err != nil {
		return err
	}
	pods, err := o.podsOn(ctx, c, name)
	if err != nil {
		return err
	}
	plan := planDrain(pods, o.rules)
	if err := plan.refusal(); err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(streams.ErrOut, "Warning: %s\n", w)
	}
	if len(plan.Delete) > 0 && !o.disableEviction {
		fmt.Fprintln(streams.ErrOut, "Warning: skiff has no eviction API and no PodDisruptionBudgets: deleting pods instead of evicting them")
	}
	for _, p := range plan.Delete {
		fmt.Fprintln(streams.Out, o.dry.done(fmt.Sprintf("deleting pod %s/%s", p.Namespace, p.Name)))
		if !o.dry.writes() {
			continue
		}
		if err := o.deletePod(ctx, c, p); err != nil {
			return err
		}
	}
	if o.dry.waits() {
		if err := o.waitGone(ctx, f, c, streams, plan.Delete); err != nil {
			return err
		}
	}
	var node skiffcorev1.Node
	node.Name = name
	f.PrintDone(streams.Out, &node, o.dry.done("drained"))
	return nil
}

// podsOn lists the node's pods in every namespace that --pod-selector
// matches.
func (o drainOptions) podsOn(ctx context.Context, c client.Reader, node string) ([]*skiffcorev1.Pod, error) {
	sel, _ := labels.Parse(o.podSelector)
	var list skiffcorev1.PodList
	if err := c.List(ctx, &list, client.MatchingFields{"spec.nodeName": node}, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing the pods on node %s: %w", node, err)
	}
	pods := make([]*skiffcorev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// deletePod deletes one pod of the plan, with --grace-period if shorter
// than its own. The UID precondition spares a new pod that took the name.
func (o drainOptions) deletePod(ctx context.Context, c client.Client, p *skiffcorev1.Pod) error {
	if err := o.shortenGracePeriod(ctx, c, p); err != nil {
		return err
	}
	err := c.Delete(ctx, p, o.dry.deleteOpts(client.Preconditions{UID: &p.UID})...)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("error when deleting pods/%q -n %q: %w", p.Name, p.Namespace, err)
	}
	return nil
}

// shortenGracePeriod passes --grace-period on to the pod's node agent. The
// apiserver keeps no grace period given at deletion for a custom resource
// (it records 0), so the agent stops a pod with its
// spec.terminationGracePeriodSeconds (30s when unset); a shorter
// --grace-period is written there first. A pod that changed meanwhile
// keeps its own.
func (o drainOptions) shortenGracePeriod(ctx context.Context, c client.Client, p *skiffcorev1.Pod) error {
	own := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		own = *g
	}
	if o.gracePeriod < 0 || int64(o.gracePeriod) >= own {
		return nil
	}
	orig := p.DeepCopy()
	p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(o.gracePeriod))
	err := c.Patch(ctx, p, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), o.dry.patchOpts()...)
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("setting the grace period of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// waitGone waits until every pod is gone (or replaced by a new pod of the
// same name), printing each as it goes, for at most --timeout.
func (o drainOptions) waitGone(ctx context.Context, f *cli.Factory, c client.Reader, streams cli.Streams, pods []*skiffcorev1.Pod) error {
	// The timeout bounds the waiting, not each request, so that a request
	// cut short cannot pass for an error of the cluster's.
	waitCtx := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	left := pods
	err := wait.PollUntilContextCancel(waitCtx, o.pollInterval, true, func(context.Context) (bool, error) {
		var still []*skiffcorev1.Pod
		for _, p := range left {
			var now skiffcorev1.Pod
			err := c.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, &now)
			switch {
			case apierrors.IsNotFound(err) || (err == nil && now.UID != p.UID):
				f.PrintDone(streams.Out, p, "deleted")
			case err != nil:
				return false, err
			default:
				still = append(still, p)
			}
		}
		left = still
		return len(left) == 0, nil
	})
	if err != nil && waitCtx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("global timeout reached: %v: pods still terminating: %s", o.timeout, podNames(left))
	}
	return err
}
