// Package kubectlskiff is the kubectl plugin `kubectl skiff`: kubectl's
// workload and node commands for skiff's own kinds, and a converter from
// upstream manifests. It is built on k8s.io/cli-runtime, so it takes
// kubectl's --kubeconfig, --context, -n and -A.
package kubectlskiff

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
	"skiff.dev/skiff/internal/kubectlskiff/convert"
	"skiff.dev/skiff/internal/kubectlskiff/describe"
	"skiff.dev/skiff/internal/kubectlskiff/nodes"
	"skiff.dev/skiff/internal/kubectlskiff/podio"
	"skiff.dev/skiff/internal/kubectlskiff/rollout"
	"skiff.dev/skiff/internal/kubectlskiff/top"
)

// Version is the plugin's version; the build may set it with
// -ldflags "-X skiff.dev/skiff/internal/kubectlskiff.Version=v1.2.3".
var Version = ""

// NewRootCommand returns `kubectl skiff` with every subcommand, writing to
// streams.
func NewRootCommand(streams cli.Streams) *cobra.Command {
	f := cli.NewFactory()
	root := &cobra.Command{
		Use:   "kubectl-skiff",
		Short: "kubectl commands for skiff's workloads and nodes",
		Long: `kubectl skiff runs kubectl's workload and node commands on skiff's kinds
(apps.skiff.dev Deployments, StatefulSets and DaemonSets, core.skiff.dev
Nodes), and converts upstream manifests to skiff's API groups.`,
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl skiff"},
		// Errors are printed once, by main, as kubectl prints them.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	f.AddFlags(root.PersistentFlags())
	root.AddCommand(
		rollout.NewCommand(f, streams),
		nodes.NewCordonCommand(f, streams),
		nodes.NewUncordonCommand(f, streams),
		nodes.NewDrainCommand(f, streams),
		podio.NewLogsCommand(f, streams),
		podio.NewExecCommand(f, streams),
		top.NewCommand(f, streams),
		describe.NewCommand(f, streams),
		convert.NewCommand(streams),
		newVersionCommand(f, streams),
	)
	return root
}

func newVersionCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version and the cluster's",
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(streams.Out, "Client Version: %s\n", clientVersion())
			if clientOnly {
				return nil
			}
			dc, err := f.Flags.ToDiscoveryClient()
			if err != nil {
				return err
			}
			v, err := dc.ServerVersion()
			if err != nil {
				return fmt.Errorf("reading the server's version (use --client for the plugin's alone): %w", err)
			}
			fmt.Fprintf(streams.Out, "Server Version: %s\n", v.GitVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "Print the plugin's version only, without connecting to the cluster.")
	return cmd
}

// clientVersion is Version, else the module version the binary was built
// from.
func clientVersion() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
