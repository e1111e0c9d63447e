// Package nodes is `kubectl skiff cordon`, `uncordon` and `drain`: they
// mark skiff Nodes unschedulable, and schedulable again, through
// spec.unschedulable, which skiff's scheduler and node lifecycle controller
// read as upstream's do; drain then deletes a node's pods by kubectl
// drain's rules (podfilter.go, pure) and waits until they are gone.
package nodes

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// NewCordonCommand returns `cordon NODE...`.
func NewCordonCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	return newCommand(f, streams, true)
}

// NewUncordonCommand returns `uncordon NODE...`.
func NewUncordonCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	return newCommand(f, streams, false)
}

func newCommand(f *cli.Factory, streams cli.Streams, cordon bool) *cobra.Command {
	verb, short := "uncordon", "Mark node as schedulable"
	if cordon {
		verb, short = "cordon", "Mark node as unschedulable"
	}
	var dry dryRun
	cmd := &cobra.Command{
		Use:     verb + " NODE...",
		Short:   short,
		Example: fmt.Sprintf("  kubectl skiff %s node-1", verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("node name required: kubectl skiff %s NODE", verb)
			}
			c, err := f.Client()
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := setUnschedulable(cmd.Context(), f, c, streams, name, cordon, dry); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	addDryRunFlag(cmd.Flags(), &dry)
	return cmd
}

// setUnschedulable sets (or clears) one Node's spec.unschedulable with a
// merge patch, as far as --dry-run lets it, and reports it in kubectl's
// words.
func setUnschedulable(ctx context.Context, f *cli.Factory, c client.Client, streams cli.Streams, name string, want bool, dry dryRun) error {
	var node skiffcorev1.Node
	if err := c.Get(ctx, types.NamespacedName{Name: name}, &node); err != nil {
		return err
	}
	verb, done := "uncordoning", "uncordoned"
	if want {
		verb, done = "cordoning", "cordoned"
	}
	if node.Spec.Unschedulable == want {
		f.PrintDone(streams.Out, &node, dry.done("already "+done))
		return nil
	}
	// null removes the field: an uncordoned Node reads as one never
	// cordoned, as upstream's.
	patch := `{"spec":{"unschedulable":null}}`
	if want {
		patch = `{"spec":{"unschedulable":true}}`
	}
	if dry.writes() {
		if err := c.Patch(ctx, &node, client.RawPatch(types.MergePatchType, []byte(patch)), dry.patchOpts()...); err != nil {
			return fmt.Errorf("%s node %s: %w", verb, name, err)
		}
	}
	f.PrintDone(streams.Out, &node, dry.done(done))
	return nil
}
