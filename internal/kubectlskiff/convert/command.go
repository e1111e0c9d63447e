package convert

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/config/crd"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// NewCommand returns `convert -f FILE|-`.
func NewCommand(streams cli.Streams) *cobra.Command {
	var files []string
	var strict bool
	cmd := &cobra.Command{
		Use:   "convert -f FILENAME",
		Short: "Convert upstream manifests to skiff's API groups",
		Long: `Convert upstream Kubernetes manifests into skiff's: apps/v1 becomes
apps.skiff.dev/v1, v1 becomes core.skiff.dev/v1 for the kinds skiff serves
(Pod, Node, Service), discovery.k8s.io/v1 EndpointSlices core.skiff.dev/v1,
and batch/v1 batch.skiff.dev/v1. Other kinds (ConfigMap, Secret,
Namespace...) are left as they are: skiff uses the built-in ones.

Every field that skiff's schemas do not have is reported on stderr and left
out of the output, since the apiserver would drop or refuse it. --strict
makes such fields an error. The converted manifests go to stdout, ready for
'kubectl apply -f -'. Works offline: the schemas are built in.`,
		Example: `  kubectl skiff convert -f app.yaml | kubectl apply -f -
  cat app.json | kubectl skiff convert -f -`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return fmt.Errorf("must specify one of -f and -k: kubectl skiff convert -f FILE (or - for stdin)")
			}
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q: name files with -f", args)
			}
			schemas, err := LoadSchemas(crd.Bases, "bases/*.yaml")
			if err != nil {
				return fmt.Errorf("loading skiff's built-in schemas: %w", err)
			}
			unsupported := 0
			for i, file := range files {
				res, err := convertFile(file, streams.In, schemas)
				if err != nil {
					return err
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(streams.ErrOut, "warning: %s\n", w)
				}
				unsupported += len(res.Warnings)
				if i > 0 && len(res.YAML) > 0 {
					fmt.Fprint(streams.Out, "---\n")
				}
				streams.Out.Write(res.YAML)
			}
			if strict && unsupported > 0 {
				return fmt.Errorf("%d fields are not supported by skiff (--strict)", unsupported)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "Files holding the manifests to convert; - reads stdin.")
	cmd.Flags().BoolVar(&strict, "strict", false, "Fail when a manifest has fields that skiff does not support.")
	return cmd
}

// convertFile converts one file, or stdin for "-".
func convertFile(file string, stdin io.Reader, schemas Schemas) (Result, error) {
	if file == "-" {
		return Convert(stdin, schemas)
	}
	f, err := os.Open(file)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	res, err := Convert(f, schemas)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", file, err)
	}
	return res, nil
}
