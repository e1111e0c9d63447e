package rollout

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// restartedAtAnnotation is the template annotation `rollout restart` sets:
// changing the template is what makes the controller replace every pod.
const restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

func newRestartCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "restart RESOURCE",
		Short: "Restart a resource",
		Long: `Restart a resource: its pods are replaced by a rollout, as after any
template change (the template gets a kubectl.kubernetes.io/restartedAt
annotation).`,
		Example: "  kubectl skiff rollout restart deployment/web\n  kubectl skiff rollout restart ds/agent",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(f, streams, args)
			if err != nil {
				return err
			}
			now := time.Now().Format(time.RFC3339)
			return s.forEach(cmd.Context(), func(w workload) error {
				if w.paused() {
					return fmt.Errorf("can't restart paused deployment (run rollout resume first)")
				}
				return s.patch(cmd.Context(), w, restartPatch(now), "restarted")
			})
		},
	}
}

// restartPatch is the merge patch that stamps the template with now.
func restartPatch(now string) string {
	return fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, restartedAtAnnotation, now)
}
