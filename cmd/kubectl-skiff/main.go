// Command kubectl-skiff is the kubectl plugin for skiff: put it on the PATH
// and run `kubectl skiff`. The commands live in internal/kubectlskiff.
package main

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/util/exec"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"skiff.dev/skiff/internal/kubectlskiff"
)

func main() {
	// The controller-runtime client logs through klog, as kubectl does;
	// without a logger it would print a warning of its own after 30s.
	ctrllog.SetLogger(klog.NewKlogr())
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	if err := kubectlskiff.NewRootCommand(streams).Execute(); err != nil {
		// As kubectl: exec exits with the remote command's code.
		var exit exec.ExitError
		if errors.As(err, &exit) && exit.Exited() {
			fmt.Fprintf(os.Stderr, "command terminated with exit code %d\n", exit.ExitStatus())
			os.Exit(exit.ExitStatus())
		}
		// As kubectl: one "error: " line, exit code 1.
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
