package rollout

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// newPauseCommand returns `pause` (pause true) or `resume`, which set and
// clear a Deployment's spec.paused. Only Deployments pause, as upstream.
func newPauseCommand(f *cli.Factory, streams cli.Streams, pause bool) *cobra.Command {
	verb, done, gerund := "resume", "resumed", "resuming"
	short := "Resume a paused resource"
	if pause {
		verb, done, gerund = "pause", "paused", "pausing"
		short = "Mark the provided resource as paused"
	}
	return &cobra.Command{
		Use:     verb + " RESOURCE",
		Short:   short,
		Example: fmt.Sprintf("  kubectl skiff rollout %s deployment/web", verb),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(f, streams, args)
			if err != nil {
				return err
			}
			return s.forEach(cmd.Context(), func(w workload) error {
				if w.kind != Deployment {
					return fmt.Errorf("%s %s is not supported: only deployments can be paused", s.f.ResourceName(w.obj), gerund)
				}
				if w.paused() == pause {
					s.f.PrintDone(streams.Out, w.obj, "already "+done)
					return nil
				}
				return s.patch(cmd.Context(), w, fmt.Sprintf(`{"spec":{"paused":%t}}`, pause), done)
			})
		},
	}
}

// patch writes a merge patch to the object and reports the operation.
func (s *session) patch(ctx context.Context, w workload, patch, done string) error {
	if err := s.c.Patch(ctx, w.obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		return err
	}
	s.f.PrintDone(s.streams.Out, w.obj, done)
	return nil
}
