package rollout

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// deploymentOwnAnnotations are the Deployment annotations an undo keeps,
// and does not take from the ReplicaSet, as upstream: they describe the
// Deployment itself or its controller's bookkeeping, not the template.
var deploymentOwnAnnotations = map[string]bool{
	corev1.LastAppliedConfigAnnotation:          true,
	revisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	"deprecated.deployment.rollback.to":         true,
}

func newUndoCommand(f *cli.Factory, streams cli.Streams) *cobra.Command {
	var toRevision int64
	cmd := &cobra.Command{
		Use:   "undo (TYPE NAME | TYPE/NAME) [flags]",
		Short: "Undo a previous rollout",
		Long:  "Roll back to a previous rollout: the previous revision, or the one --to-revision names.",
		Example: `  kubectl skiff rollout undo deployment/web
  kubectl skiff rollout undo sts/db --to-revision=2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newSession(f, streams, args)
			if err != nil {
				return err
			}
			return s.forEach(cmd.Context(), func(w workload) error {
				return s.undo(cmd.Context(), w, toRevision)
			})
		},
	}
	cmd.Flags().Int64Var(&toRevision, "to-revision", 0, "The revision to rollback to. Default to 0 (last revision).")
	return cmd
}

// undo puts a revision's template back into the object with one JSON
// patch, as kubectl does: the controller then rolls it out as any other
// template change.
func (s *session) undo(ctx context.Context, w workload, to int64) error {
	name := s.f.ResourceName(w.obj)
	if w.paused() {
		return fmt.Errorf("you cannot rollback a paused deployment; resume it first with 'kubectl skiff rollout resume %s' and try again", name)
	}
	revs, err := listRevisions(ctx, s.c, w)
	if err != nil {
		return err
	}
	target, err := findRevision(revs, to)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	template := target.Template.DeepCopy()
	if w.kind == Deployment {
		delete(template.Labels, podTemplateHashLabel)
	}
	if equality.Semantic.DeepEqual(template, w.template()) {
		fmt.Fprintf(s.streams.Out, "%s skipped rollback (current template already matches revision %d)\n", name, target.Number)
		return nil
	}
	ops := []jsonPatchOp{{Op: "replace", Path: "/spec/template", Value: template}}
	if w.kind == Deployment {
		ops = append(ops, jsonPatchOp{Op: "add", Path: "/metadata/annotations", Value: undoAnnotations(w.obj.GetAnnotations(), target.Annotations)})
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := s.c.Patch(ctx, w.obj, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("rolling back %s: %w", name, err)
	}
	s.f.PrintDone(s.streams.Out, w.obj, "rolled back")
	return nil
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// undoAnnotations are a rolled-back Deployment's annotations: its own
// bookkeeping ones, and the ReplicaSet's others (its change-cause among
// them), as upstream.
func undoAnnotations(deployment, replicaSet map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range deployment {
		if deploymentOwnAnnotations[k] {
			out[k] = v
		}
	}
	for k, v := range replicaSet {
		if !deploymentOwnAnnotations[k] {
			out[k] = v
		}
	}
	return out
}
