package podio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// logsOptions are `kubectl skiff logs`'s flags.
type logsOptions struct {
	container      string
	allContainers  bool
	selector       string
	prefix         bool
	maxLogRequests int
	insecure       bool
	log            logOptions
}

// NewLogsCommand returns `kubectl skiff logs`.
func NewLogsCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | TYPE/NAME | -l SELECTOR) [-c CONTAINER]",
		Short: "Print the logs of a container in a pod",
		Long: `Print the logs of a container in a pod, read from its node agent as kubectl
reads them from the kubelet. TYPE/NAME is a deployment, replicaset,
statefulset, daemonset or job: one of its pods is chosen. With -l every
matching pod's logs are printed.`,
		Example: `  kubectl skiff logs web-7d9f-abcde
  kubectl skiff logs -f --tail=20 deploy/web
  kubectl skiff logs -p web-0 -c sidecar
  kubectl skiff logs -l app=web --prefix`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("tail") && o.selector != "" {
				// kubectl's default for a selector: the last 10 lines of each.
				o.log.tail = 10
			}
			return o.run(cmd.Context(), f, streams, args)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.log.follow, "follow", "f", false, "Specify if the logs should be streamed.")
	fl.Int64Var(&o.log.tail, "tail", -1, "Lines of recent log file to display: all of them (-1) with no selector, otherwise 10, if a selector is provided.")
	fl.BoolVarP(&o.log.previous, "previous", "p", false, "If true, print the logs for the previous instance of the container in a pod if it exists.")
	fl.BoolVar(&o.log.timestamps, "timestamps", false, "Include timestamps on each line in the log output.")
	fl.DurationVar(&o.log.since, "since", 0, "Only return logs newer than a relative duration like 5s, 2m, or 3h. Defaults to all logs.")
	fl.Int64Var(&o.log.limitBytes, "limit-bytes", 0, "Maximum bytes of logs to return. Defaults to no limit.")
	fl.StringVarP(&o.container, "container", "c", "", "Print the logs of this container. If omitted, the one the kubectl.kubernetes.io/default-container annotation names, else the pod's first container.")
	fl.BoolVar(&o.allContainers, "all-containers", false, "Get all containers' logs in the pod(s).")
	fl.StringVarP(&o.selector, "selector", "l", "", "Selector (label query) to filter on, supports '=', '==', '!=', 'in', 'notin'.(e.g. -l key1=value1,key2=value2).")
	fl.BoolVar(&o.prefix, "prefix", false, "Prefix each log line with the log source (pod name and container name).")
	fl.IntVar(&o.maxLogRequests, "max-log-requests", 5, "Specify maximum number of concurrent logs to follow when using by a selector.")
	fl.BoolVar(&o.insecure, "insecure-skip-tls-verify-backend", false, "Skip verifying the identity of the node agent that logs are requested from. This could allow an attacker to provide invalid log content.")
	return cmd
}

// logSource is one container whose log is printed.
type logSource struct {
	pod       *skiffcorev1.Pod
	container string
}

func (s logSource) prefix() string { return fmt.Sprintf("[pod/%s/%s] ", s.pod.Name, s.container) }

func (o *logsOptions) run(ctx context.Context, f *cli.Factory, streams cli.Streams, args []string) error {
	if err := o.checkArgs(args); err != nil {
		return err
	}
	ns, err := f.Namespace()
	if err != nil {
		return err
	}
	c, err := f.Client()
	if err != nil {
		return err
	}
	pods, err := o.pods(ctx, c, ns, args, streams.ErrOut)
	if err != nil {
		return err
	}
	sources, err := o.sources(pods, args, streams.ErrOut)
	if err != nil {
		return err
	}
	if o.log.follow && len(sources) > o.maxLogRequests {
		return fmt.Errorf("you are attempting to follow %d log streams, but maximum allowed concurrency is %d, use --max-log-requests to increase the limit", len(sources), o.maxLogRequests)
	}
	cfg, err := agentConfig(f, o.insecure)
	if err != nil {
		return err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	get := func(s logSource, out io.Writer) error {
		base, err := podAgent(ctx, c, s.pod)
		if err != nil {
			return err
		}
		return getLog(ctx, hc, logsURL(base, s.pod, s.container, o.log), out)
	}
	return printLogs(sources, o.log.follow, o.prefix, streams.Out, get)
}

// checkArgs checks that one of POD, TYPE/NAME or -l names the pods, as
// kubectl does.
func (o *logsOptions) checkArgs(args []string) error {
	switch {
	case o.selector != "" && len(args) > 0:
		return errors.New("only a selector (-l) or a POD or TYPE/NAME may be given, not both")
	case o.selector == "" && len(args) == 0:
		return errors.New("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command")
	case len(args) > 2:
		return errors.New("expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]': too many arguments")
	case len(args) == 2 && o.container != "":
		return errors.New("only one of -c or an inline [CONTAINER] argument is allowed")
	case o.allContainers && (o.container != "" || len(args) == 2):
		return errors.New("--all-containers=true should not be specified with container name")
	}
	return nil
}

// pods are the pods whose logs are printed: the one an argument names, or
// every one -l selects. Picking one of a workload's several says so on
// warn.
func (o *logsOptions) pods(ctx context.Context, c client.Reader, ns string, args []string, warn io.Writer) ([]skiffcorev1.Pod, error) {
	if o.selector != "" {
		sel, err := labels.Parse(o.selector)
		if err != nil {
			return nil, fmt.Errorf("-l %q: %w", o.selector, err)
		}
		pods, err := listPods(ctx, c, ns, sel)
		if err != nil {
			return nil, err
		}
		if len(pods) == 0 {
			return nil, fmt.Errorf("no pods in namespace %s match -l %s", ns, o.selector)
		}
		return pods, nil
	}
	t, err := parseTarget(args[0])
	if err != nil {
		return nil, err
	}
	p, found, err := resolvePod(ctx, c, ns, t)
	if err != nil {
		return nil, err
	}
	if found > 1 {
		// As kubectl: the user named several pods and gets one's logs.
		fmt.Fprintf(warn, "Found %d pods, using pod/%s\n", found, p.Name)
	}
	return []skiffcorev1.Pod{*p}, nil
}

// sources are the containers of pods whose logs are printed: every one
// with --all-containers, else the one chosen, with a note on warn for each
// pod whose first container is picked out of several.
func (o *logsOptions) sources(pods []skiffcorev1.Pod, args []string, warn io.Writer) ([]logSource, error) {
	name := o.container
	if len(args) == 2 {
		name = args[1] // kubectl's old `logs POD CONTAINER`
	}
	var out []logSource
	for i := range pods {
		p := &pods[i]
		if o.allContainers {
			for _, c := range containerNames(p) {
				out = append(out, logSource{p, c})
			}
			continue
		}
		c, err := chooseContainer(p, name, warn)
		if err != nil {
			return nil, err
		}
		out = append(out, logSource{p, c})
	}
	return out, nil
}

// printLogs prints each source's log with get: one after the other, or
// side by side, line by line, when they are followed. With prefix each
// line says which container wrote it.
func printLogs(sources []logSource, follow, prefix bool, out io.Writer, get func(logSource, io.Writer) error) error {
	var mu sync.Mutex
	sideBySide := follow && len(sources) > 1
	writer := func(s logSource) *lineWriter {
		w := &lineWriter{mu: &mu, out: out, endLastLine: sideBySide}
		if prefix {
			w.prefix = s.prefix()
		}
		return w
	}
	if !sideBySide {
		for _, s := range sources {
			w := writer(s)
			err := get(s, w)
			w.Flush()
			if err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Go(func() {
			w := writer(s)
			errs[i] = get(s, w)
			w.Flush()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lineWriter writes whole lines to out, each with a prefix, under a lock
// that the writers of several logs share, so that their lines never mix.
type lineWriter struct {
	mu     *sync.Mutex
	out    io.Writer
	prefix string
	// endLastLine ends a last line that lacks its newline, so that the
	// next line of another log does not continue it.
	endLastLine bool
	partial     []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	end := bytes.LastIndexByte(w.partial, '\n')
	if end < 0 {
		return len(p), nil
	}
	err := w.write(w.partial[:end+1])
	w.partial = append(w.partial[:0], w.partial[end+1:]...)
	return len(p), err
}

// Flush writes what is left of a last line that lacks its newline.
func (w *lineWriter) Flush() {
	if len(w.partial) == 0 {
		return
	}
	if w.endLastLine {
		w.partial = append(w.partial, '\n')
	}
	_ = w.write(w.partial)
	w.partial = w.partial[:0]
}

func (w *lineWriter) write(lines []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prefix == "" {
		_, err := w.out.Write(lines)
		return err
	}
	var buf bytes.Buffer
	for len(lines) > 0 {
		line, rest, _ := bytes.Cut(lines, []byte{'\n'})
		buf.WriteString(w.prefix)
		buf.Write(line)
		if len(rest) > 0 || lines[len(lines)-1] == '\n' {
			buf.WriteByte('\n')
		}
		lines = rest
	}
	_, err := w.out.Write(buf.Bytes())
	return err
}
