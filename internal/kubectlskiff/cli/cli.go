// Package cli is what every kubectl-skiff command shares: the usual kubectl
// flags (from k8s.io/cli-runtime), a client for skiff's kinds built from
// them, and kubectl's way of naming an object in its output.
package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"skiff.dev/skiff/api"
)

// Factory turns the kubeconfig flags into clients, as kubectl's own
// factory does, for skiff's kinds and the built-in ones skiff uses.
type Factory struct {
	Flags *genericclioptions.ConfigFlags
	// AllNamespaces is -A / --all-namespaces.
	AllNamespaces bool
	Scheme        *runtime.Scheme
}

// NewFactory returns a Factory whose flags AddFlags registers.
func NewFactory() *Factory {
	return &Factory{
		Flags:  genericclioptions.NewConfigFlags(true),
		Scheme: api.NewScheme(),
	}
}

// AddFlags registers --kubeconfig, --context, -n and the rest of kubectl's
// connection flags, and -A.
func (f *Factory) AddFlags(flags *pflag.FlagSet) {
	f.Flags.AddFlags(flags)
	flags.BoolVarP(&f.AllNamespaces, "all-namespaces", "A", false, "If present, act across all namespaces. Namespace in current context is ignored even if specified with --namespace.")
}

// Client returns a client that reads and writes (and watches) skiff's kinds.
func (f *Factory) Client() (client.WithWatch, error) {
	cfg, err := f.Flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	return client.NewWithWatch(cfg, client.Options{Scheme: f.Scheme})
}

// Namespace is the namespace the flags and kubeconfig select: -n, else the
// context's, else "default".
func (f *Factory) Namespace() (string, error) {
	ns, _, err := f.Flags.ToRawKubeConfigLoader().Namespace()
	return ns, err
}

// Streams are a command's input and outputs; tests pass buffers.
type Streams = genericiooptions.IOStreams

// ResourceName is how kubectl names an object in its output:
// kind.group/name in lower case ("deployment.apps.skiff.dev/web").
func (f *Factory) ResourceName(obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, f.Scheme)
	if err != nil {
		return obj.GetName()
	}
	kind := strings.ToLower(gvk.Kind)
	if gvk.Group != "" {
		kind += "." + gvk.Group
	}
	return kind + "/" + obj.GetName()
}

// PrintDone writes kubectl's one-line report of an operation on an object,
// "deployment.apps.skiff.dev/web restarted".
func (f *Factory) PrintDone(out io.Writer, obj client.Object, operation string) {
	fmt.Fprintf(out, "%s %s\n", f.ResourceName(obj), operation)
}
