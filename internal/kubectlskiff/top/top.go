// Package top is `kubectl skiff top node` and `kubectl skiff top pod`:
// kubectl top's tables, read from the node agents' /stats/summary (the
// kubelet's Summary API) instead of a metrics server. A pod's usage is the
// sum of its containers', its memory their working set, as the metrics
// API reports them.
package top

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
	"skiff.dev/skiff/internal/kubectlskiff/podio"
)

// agentTimeout bounds a whole top: an agent measures for a second at most.
const agentTimeout = 30 * time.Second

// options are the flags both subcommands share.
type options struct {
	selector   string
	sortBy     string
	noHeaders  bool
	insecure   bool
	containers bool // pod only
}

func (o *options) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.(e.g. -l key1=value1,key2=value2).")
	fl.StringVar(&o.sortBy, "sort-by", "", "If non-empty, sort the list using specified field. The field can be either 'cpu' or 'memory'.")
	fl.BoolVar(&o.noHeaders, "no-headers", false, "If present, print output without headers.")
	fl.BoolVar(&o.insecure, "insecure-skip-tls-verify-backend", false, "Skip verifying the identity of the node agents the usage is read from.")
}

// NewCommand returns `kubectl skiff top` with its node and pod commands.
func NewCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Display resource (CPU/memory) usage of nodes and pods",
		Long: `Display the CPU and memory usage of nodes and pods, as kubectl top does, read
from each node agent's /stats/summary: the pods' cgroups and the node's root
cgroup. Reading it needs nodes/stats get in group core.skiff.dev.`,
	}
	cmd.AddCommand(newNodeCommand(f, streams), newPodCommand(f, streams))
	return cmd
}

func newNodeCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:     "node [NAME | -l label]",
		Aliases: []string{"nodes", "no"},
		Short:   "Display resource (CPU/memory) usage of nodes",
		Example: `  kubectl skiff top node
  kubectl skiff top node n1
  kubectl skiff top node --sort-by=cpu`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runNodes(cmd.Context(), f, streams, args)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newPodCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:     "pod [NAME | -l label]",
		Aliases: []string{"pods", "po"},
		Short:   "Display resource (CPU/memory) usage of pods",
		Example: `  kubectl skiff top pod
  kubectl skiff top pod -A --sort-by=memory
  kubectl skiff top pod web-0 --containers
  kubectl skiff top pod -l app=web`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.runPods(cmd.Context(), f, streams, args)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.containers, "containers", false, "If present, print usage of containers within a pod.")
	return cmd
}

// check refuses flags that do not go together, as kubectl top does.
func (o *options) check(args []string) (labels.Selector, error) {
	if err := checkSortBy(o.sortBy); err != nil {
		return nil, err
	}
	if len(args) == 1 && o.selector != "" {
		return nil, errors.New("only one of NAME or --selector can be provided")
	}
	return labels.Parse(o.selector)
}

func (o *options) runNodes(ctx context.Context, f *cli.Factory, streams cli.Streams, args []string) error {
	sel, err := o.check(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	c, err := f.Client()
	if err != nil {
		return err
	}
	var nodes []*skiffcorev1.Node
	if len(args) == 1 {
		n := &skiffcorev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: args[0]}, n); err != nil {
			return err
		}
		nodes = append(nodes, n)
	} else {
		list := &skiffcorev1.NodeList{}
		if err := c.List(ctx, list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
			return err
		}
		for i := range list.Items {
			nodes = append(nodes, &list.Items[i])
		}
	}
	if len(nodes) == 0 {
		fmt.Fprintln(streams.ErrOut, "No resources found")
		return nil
	}
	got, err := o.read(ctx, f, streams.ErrOut, nodes)
	if err != nil {
		return err
	}
	rows := make([]nodeRow, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, nodeRowOf(n, got[n.Name]))
	}
	sortBy(rows, o.sortBy, func(r nodeRow) usage { return r.used }, func(r nodeRow) string { return r.name })
	t := o.table(streams.Out, "NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)")
	for _, r := range rows {
		t.row(append([]string{r.name}, r.cells()...)...)
	}
	return t.flush()
}

func (o *options) runPods(ctx context.Context, f *cli.Factory, streams cli.Streams, args []string) error {
	sel, err := o.check(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	ns, err := f.Namespace()
	if err != nil {
		return err
	}
	c, err := f.Client()
	if err != nil {
		return err
	}
	pods, err := o.pods(ctx, c, ns, f.AllNamespaces, sel, args)
	if err != nil {
		return err
	}
	nodes, err := podNodes(ctx, c, pods)
	if err != nil {
		return err
	}
	got := map[string]*statsv1alpha1.Summary{}
	if len(nodes) > 0 {
		if got, err = o.read(ctx, f, streams.ErrOut, nodes); err != nil {
			return err
		}
	}
	var rows []podRow
	for _, p := range pods {
		row, ok := podRowOf(p, got[p.Spec.NodeName])
		if !ok {
			if len(args) == 1 {
				return fmt.Errorf("Metrics not available for pod %s/%s, age: %s", p.Namespace, p.Name, time.Since(p.CreationTimestamp.Time).Round(time.Second)) //nolint:staticcheck // kubectl's words
			}
			continue
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		if f.AllNamespaces {
			fmt.Fprintln(streams.ErrOut, "No resources found")
		} else {
			fmt.Fprintf(streams.ErrOut, "No resources found in %s namespace.\n", ns)
		}
		return nil
	}
	sortBy(rows, o.sortBy, func(r podRow) usage { return r.used }, func(r podRow) string { return r.namespace + "/" + r.name })
	return o.printPods(streams.Out, rows, f.AllNamespaces)
}

// pods are the pods top looks at: the one named, else those -l selects
// in the namespace (or every one with -A).
func (o *options) pods(ctx context.Context, c client.Reader, ns string, all bool, sel labels.Selector, args []string) ([]*skiffcorev1.Pod, error) {
	if len(args) == 1 {
		p := &skiffcorev1.Pod{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: args[0]}, p); err != nil {
			return nil, err
		}
		return []*skiffcorev1.Pod{p}, nil
	}
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: sel}}
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	list := &skiffcorev1.PodList{}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	out := make([]*skiffcorev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}

// podNodes are the nodes the pods are bound to.
func podNodes(ctx context.Context, c client.Reader, pods []*skiffcorev1.Pod) ([]*skiffcorev1.Node, error) {
	var names []string
	for _, p := range pods {
		if p.Spec.NodeName != "" && !slices.Contains(names, p.Spec.NodeName) {
			names = append(names, p.Spec.NodeName)
		}
	}
	sort.Strings(names)
	nodes := make([]*skiffcorev1.Node, 0, len(names))
	for _, name := range names {
		n := &skiffcorev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			if client.IgnoreNotFound(err) == nil {
				continue // gone: its pods have no usage to show
			}
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// read gets the nodes' summaries. A node whose agent fails is reported on
// errOut and shown without usage; when every one fails, top fails with
// their reasons (a 403 says which grant is missing).
func (o *options) read(ctx context.Context, f *cli.Factory, errOut io.Writer, nodes []*skiffcorev1.Node) (map[string]*statsv1alpha1.Summary, error) {
	hc, err := podio.AgentClient(f, o.insecure)
	if err != nil {
		return nil, err
	}
	got, failed := summaries(ctx, hc, nodes)
	var errs []error
	for _, n := range nodes {
		if err, ok := failed[n.Name]; ok {
			errs = append(errs, err)
		}
	}
	if len(got) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, err := range errs {
		fmt.Fprintf(errOut, "Warning: %v\n", err)
	}
	return got, nil
}

// printPods prints kubectl top pod's table: NAMESPACE with -A, a line per
// container with --containers.
func (o *options) printPods(out io.Writer, rows []podRow, all bool) error {
	head := []string{"NAME", "CPU(cores)", "MEMORY(bytes)"}
	if o.containers {
		head = append([]string{"POD"}, head...)
	}
	if all {
		head = append([]string{"NAMESPACE"}, head...)
	}
	t := o.table(out, head...)
	line := func(r podRow, name string, u usage) {
		cells := []string{name, formatCPU(u.nanoCores), formatMemory(u.workingSetBytes)}
		if o.containers {
			cells = append([]string{r.name}, cells...)
		}
		if all {
			cells = append([]string{r.namespace}, cells...)
		}
		t.row(cells...)
	}
	for _, r := range rows {
		if !o.containers {
			line(r, r.name, r.used)
			continue
		}
		for _, c := range r.containers {
			line(r, c.name, c.used)
		}
	}
	return t.flush()
}

// table writes aligned columns as kubectl's tab writer does.
type table struct{ w *tabwriter.Writer }

func (o *options) table(out io.Writer, head ...string) table {
	t := table{tabwriter.NewWriter(out, 10, 4, 3, ' ', 0)}
	if !o.noHeaders {
		t.row(head...)
	}
	return t
}

func (t table) row(cells ...string) { fmt.Fprintln(t.w, strings.Join(cells, "\t")) }

func (t table) flush() error { return t.w.Flush() }
