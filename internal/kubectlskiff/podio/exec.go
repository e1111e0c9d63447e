package podio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/kubectl/pkg/util/term"
	"k8s.io/streaming/pkg/httpstream"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// execOptions are `kubectl skiff exec`'s flags.
type execOptions struct {
	container string
	stdin     bool
	tty       bool
	quiet     bool
	insecure  bool
}

// NewExecCommand returns `kubectl skiff exec`.
func NewExecCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := &execOptions{}
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Long: `Execute a command in a container, through its node agent as kubectl does
through the kubelet. TYPE/NAME is a deployment, replicaset, statefulset,
daemonset or job: one of its pods is chosen. -it gives an interactive shell.`,
		Example: `  kubectl skiff exec web-0 -- date
  kubectl skiff exec -it deploy/web -c app -- sh
  echo hi | kubectl skiff exec -i web-0 -- cat`,
		RunE: func(cmd *cobra.Command, args []string) error {
			podArg, command, err := parseExecArgs(args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), f, streams, podArg, command)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.container, "container", "c", "", "Container name. If omitted, the one the kubectl.kubernetes.io/default-container annotation names, else the pod's first container.")
	fl.BoolVarP(&o.stdin, "stdin", "i", false, "Pass stdin to the container")
	fl.BoolVarP(&o.tty, "tty", "t", false, "Stdin is a TTY")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "Only print output from the remote session")
	fl.BoolVar(&o.insecure, "insecure-skip-tls-verify-backend", false, "Skip verifying the identity of the node agent the session runs through.")
	return cmd
}

// parseExecArgs splits `POD -- COMMAND...`; dash is where -- was
// (cobra's ArgsLenAtDash, -1 without one).
func parseExecArgs(args []string, dash int) (podArg string, command []string, err error) {
	if dash < 0 {
		if len(args) > 1 {
			return "", nil, errors.New("exec [POD] [COMMAND] is not supported: use exec [POD] -- [COMMAND]")
		}
		dash = len(args)
	}
	switch {
	case dash == 0:
		return "", nil, errors.New("expected 'exec (POD | TYPE/NAME) -- COMMAND [args...]'.\nPOD or TYPE/NAME is a required argument for the exec command")
	case dash > 1:
		return "", nil, fmt.Errorf("exec takes one POD or TYPE/NAME before --, got %q", args[:dash])
	case len(args) == dash:
		return "", nil, errors.New("you must specify at least one command for the container, after --")
	}
	return args[0], args[dash:], nil
}

func (o *execOptions) run(ctx context.Context, f *cli.Factory, streams cli.Streams, podArg string, command []string) error {
	ns, err := f.Namespace()
	if err != nil {
		return err
	}
	c, err := f.Client()
	if err != nil {
		return err
	}
	t, err := parseTarget(podArg)
	if err != nil {
		return err
	}
	// kubectl exec picks a workload's pod without saying so; logs says.
	p, _, err := resolvePod(ctx, c, ns, t)
	if err != nil {
		return err
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", p.Status.Phase)
	}
	warn := streams.ErrOut
	if o.quiet {
		warn = io.Discard
	}
	container, err := chooseContainer(p, o.container, warn)
	if err != nil {
		return err
	}
	base, err := podAgent(ctx, c, p)
	if err != nil {
		return err
	}
	tty, in, errOut := o.terminal(streams)
	u := execURL(base, p, container, command, in != nil, tty.Raw)
	cfg, err := agentConfig(f, o.insecure)
	if err != nil {
		return err
	}
	e, err := newExecutor(cfg, u)
	if err != nil {
		return err
	}
	opts := remotecommand.StreamOptions{Stdin: in, Stdout: tty.Out, Stderr: errOut, Tty: tty.Raw}
	if tty.Raw {
		opts.TerminalSizeQueue = sizeQueue{tty.MonitorSize(tty.GetSize())}
	}
	return tty.Safe(func() error { return e.StreamWithContext(ctx, opts) })
}

// terminal is how the session meets the user's terminal, as kubectl's
// exec sets it up: stdin only with -i; with -t and a terminal on stdin,
// that terminal in raw mode, carrying stderr in its output; with -t and no
// terminal, a warning and no terminal.
func (o *execOptions) terminal(streams cli.Streams) (t term.TTY, in io.Reader, errOut io.Writer) {
	t = term.TTY{Out: streams.Out}
	if !o.stdin {
		if o.tty && !o.quiet {
			fmt.Fprintln(streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		return t, nil, streams.ErrOut
	}
	t.In = streams.In
	if !o.tty {
		return t, streams.In, streams.ErrOut
	}
	if !t.IsTerminalIn() {
		if !o.quiet {
			fmt.Fprintln(streams.ErrOut, "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		return t, streams.In, streams.ErrOut
	}
	t.Raw = true
	return t, streams.In, nil
}

// newExecutor speaks WebSocket (v5.channel.k8s.io) to the agent, falling
// back to SPDY when the upgrade fails, as kubectl does.
func newExecutor(cfg *rest.Config, u string) (remotecommand.Executor, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", parsed)
	if err != nil {
		return nil, err
	}
	// A WebSocket is opened by a GET (RFC 6455).
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u)
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// sizeQueue hands the terminal's sizes to the executor: kubectl's term
// package has a TerminalSize type of its own.
type sizeQueue struct{ q term.TerminalSizeQueue }

func (s sizeQueue) Next() *remotecommand.TerminalSize {
	size := s.q.Next()
	if size == nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: size.Width, Height: size.Height}
}
