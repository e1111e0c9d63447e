package rollout

import (
	"fmt"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

func newHistoryCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	var number int64
	cmd := &cobra.Command{
		Use:     "history (TYPE NAME | TYPE/NAME) [flags]",
		Short:   "View rollout history",
		Long:    "View previous rollout revisions and configurations.",
		Example: "  kubectl skiff rollout history deployment/web\n\n  # See the details of revision 3\n  kubectl skiff rollout history deployment/web --revision=3",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(f, streams, args)
			if err != nil {
				return err
			}
			return s.forEach(cmd.Context(), func(w workload) error {
				revs, err := listRevisions(cmd.Context(), s.c, w)
				if err != nil {
					return err
				}
				name := f.ResourceName(w.obj)
				if number == 0 {
					fmt.Fprintf(streams.Out, "%s \n%s\n", name, historyTable(revs))
					return nil
				}
				for _, r := range revs {
					if r.Number == number {
						fmt.Fprintf(streams.Out, "%s with revision #%d\n%s\n", name, number, templateView(r))
						return nil
					}
				}
				return fmt.Errorf("unable to find the specified revision %d of %s", number, name)
			})
		},
	}
	cmd.Flags().Int64Var(&number, "revision", 0, "See the details, including podTemplate of the revision specified")
	return cmd
}
