package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// errTimedOut is kubectl's message when --timeout runs out.
var errTimedOut = errors.New("timed out waiting for the condition")

// statusOptions are `rollout status`'s flags.
type statusOptions struct {
	watch    bool
	timeout  time.Duration
	revision int64
}

func newStatusCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	o := statusOptions{watch: true}
	cmd := &cobra.Command{
		Use:   "status (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Show the status of the rollout",
		Long: `Show the status of the rollout.

By default 'rollout status' watches the latest rollout until it is done. Use
--watch=false to print the status once and exit. A deployment that exceeds its
progress deadline ends the wait with an error.`,
		Example: `  kubectl skiff rollout status deployment/web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(f, streams, args)
			if err != nil {
				return err
			}
			if len(s.targets) != 1 {
				return fmt.Errorf("rollout status is only supported on individual resources: name one")
			}
			return o.run(cmd.Context(), s, s.targets[0])
		},
	}
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", o.watch, "Watch the status of the rollout until it's done.")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "The length of time to wait before ending watch, zero means never. Any other values should contain a corresponding time unit (e.g. 1s, 2m, 3h).")
	cmd.Flags().Int64Var(&o.revision, "revision", 0, "Pin to a specific revision for showing its status. Defaults to 0 (last revision).")
	return cmd
}

// run prints the target's progress each time it changes, until the
// rollout is done, fails, or the timeout passes. It follows the object
// with a watch, and reads it afresh whenever the watch ends.
func (o *statusOptions) run(ctx context.Context, s *session, t Target) error {
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	last := ""
	// report prints a new message and tells whether to stop.
	report := func(w workload) (bool, error) {
		p := w.progress(o.revision)
		if p.Err != nil {
			return true, p.Err
		}
		if p.Message != last {
			fmt.Fprintln(s.streams.Out, p.Message)
			last = p.Message
		}
		return p.Done || !o.watch, nil
	}
	for {
		w, err := s.get(ctx, t)
		if err != nil {
			return timedOutOr(ctx, err)
		}
		if stop, err := report(w); stop {
			return err
		}
		if stop, err := follow(ctx, s.c, w, report); stop {
			return err
		}
		if ctx.Err() != nil {
			return errTimedOut
		}
	}
}

// follow watches one object from the version read, reporting each change,
// until report says stop or the watch ends (then it returns false, and
// the caller reads the object again).
func follow(ctx context.Context, c client.WithWatch, w workload, report func(workload) (bool, error)) (bool, error) {
	watcher, err := c.Watch(ctx, newList(w.kind), client.InNamespace(w.obj.GetNamespace()),
		client.MatchingFields{"metadata.name": w.obj.GetName()},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: w.obj.GetResourceVersion()}})
	if err != nil {
		// A watch refused (forbidden, say) would be refused again.
		return true, timedOutOr(ctx, err)
	}
	defer watcher.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, errTimedOut
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				obj, ok := ev.Object.(client.Object)
				if !ok {
					return false, nil
				}
				if stop, err := report(workload{w.kind, obj}); stop {
					return true, err
				}
			case watch.Deleted:
				return true, fmt.Errorf("%s %q was deleted while waiting for its rollout", w.kind, w.obj.GetName())
			default: // an error event (an expired version, say): read afresh
				return false, nil
			}
		}
	}
}

// timedOutOr is errTimedOut when the context's deadline has passed, else err.
func timedOutOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errTimedOut
	}
	return err
}
