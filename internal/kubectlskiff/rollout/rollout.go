// Package rollout is `kubectl skiff rollout`: status, history, undo, pause,
// resume and restart for skiff's Deployments, StatefulSets and DaemonSets,
// with kubectl rollout's arguments, words and exit codes.
//
// The judgements are pure (status.go reads progress from an object,
// history.go renders revisions); the commands here only read, call them,
// and write.
package rollout

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// NewCommand returns `rollout` with its subcommands.
func NewCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of skiff deployments, statefulsets and daemonsets",
		Long: `Manage the rollout of one or more skiff resources.

Valid resource types include:
  * deployments (deploy)
  * daemonsets (ds)
  * statefulsets (sts)`,
		Example: `  # Roll back to the previous deployment
  kubectl skiff rollout undo deployment/web

  # Check the rollout status of a daemonset
  kubectl skiff rollout status ds/agent

  # Restart a statefulset
  kubectl skiff rollout restart sts/db`,
	}
	cmd.AddCommand(
		newStatusCommand(f, streams),
		newHistoryCommand(f, streams),
		newUndoCommand(f, streams),
		newPauseCommand(f, streams, true),
		newPauseCommand(f, streams, false),
		newRestartCommand(f, streams),
	)
	return cmd
}

// session is one command's connection: the client, the namespace and the
// objects the arguments name.
type session struct {
	f       *cli.Factory
	streams cli.Streams
	c       client.WithWatch
	ns      string
	targets []Target
}

func newSession(f *cli.Factory, streams cli.Streams, args []string) (*session, error) {
	if f.AllNamespaces {
		return nil, fmt.Errorf("rollout acts on named objects in one namespace: use -n NAMESPACE, not -A")
	}
	targets, err := ParseTargets(args)
	if err != nil {
		return nil, err
	}
	c, err := f.Client()
	if err != nil {
		return nil, err
	}
	ns, err := f.Namespace()
	if err != nil {
		return nil, err
	}
	return &session{f: f, streams: streams, c: c, ns: ns, targets: targets}, nil
}

// get reads a target; a missing one is the apiserver's NotFound, as
// kubectl reports it.
func (s *session) get(ctx context.Context, t Target) (workload, error) {
	w := newWorkload(t.Kind)
	err := s.c.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: t.Name}, w.obj)
	return w, err
}

// forEach runs do on every target, going on after a failure as kubectl
// does, and returns the errors joined.
func (s *session) forEach(ctx context.Context, do func(workload) error) error {
	var errs []error
	for _, t := range s.targets {
		w, err := s.get(ctx, t)
		if err == nil {
			err = do(w)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

// joinErrors joins errors one per line, as kubectl prints several.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msg := errs[0].Error()
	for _, err := range errs[1:] {
		msg += "\nerror: " + err.Error()
	}
	return fmt.Errorf("%s", msg)
}
