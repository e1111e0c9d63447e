package deployment

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// RollbackToAnnotation asks for a rollback, as `kubectl rollout undo` does:
// its value is the revision to go back to, or "0" for the one before the
// current. The controller copies that revision's template into
// spec.template and removes the annotation; the rollout that follows is an
// ordinary one, and the ReplicaSet it reuses takes the next revision number.
const RollbackToAnnotation = "deploy.skiff.dev/rollback-to"

// defaultRevisionHistoryLimit is upstream's default for
// spec.revisionHistoryLimit.
const defaultRevisionHistoryLimit = 10

// RevisionHistoryAnnotation lists, comma-separated and oldest first, the
// revisions a ReplicaSet had before a rollback reused it, as upstream.
const RevisionHistoryAnnotation = "deployment.kubernetes.io/revision-history"

// maxRevisionHistoryChars bounds RevisionHistoryAnnotation, as upstream's
// limit: the oldest revisions go first.
const maxRevisionHistoryChars = 2000

// appendRevisionHistory adds rev to a revision-history annotation value.
func appendRevisionHistory(history, rev string) string {
	revs := []string{rev}
	if history != "" {
		revs = append(strings.Split(history, ","), rev)
	}
	for len(revs) > 1 && len(strings.Join(revs, ",")) > maxRevisionHistoryChars {
		revs = revs[1:]
	}
	return strings.Join(revs, ",")
}

func revision(rs *skiffappsv1.ReplicaSet) int64 {
	v, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// rollbackTemplate finds the template to roll back to. want is the
// requested revision, 0 meaning the highest below current. The template
// comes back without its pod-template-hash label.
func rollbackTemplate(rss []*skiffappsv1.ReplicaSet, current, want int64) (*corev1.PodTemplateSpec, int64, error) {
	var best *skiffappsv1.ReplicaSet
	for _, rs := range rss {
		r := revision(rs)
		switch {
		case want != 0 && r == want:
			best = rs
		case want == 0 && r < current && (best == nil || r > revision(best)):
			best = rs
		}
	}
	if best == nil {
		if want == 0 {
			return nil, 0, fmt.Errorf("no revision before %d to roll back to", current)
		}
		return nil, 0, fmt.Errorf("revision %d not found: it may have been cleaned up (see spec.revisionHistoryLimit)", want)
	}
	t := best.Spec.Template.DeepCopy()
	delete(t.Labels, PodTemplateHashLabel)
	return t, revision(best), nil
}

// historyToDelete returns the old ReplicaSets beyond the history limit, the
// lowest revisions first. Only empty ones (no replicas wanted, no pods left)
// may go: one still running pods is part of the rollout.
func historyToDelete(old []*skiffappsv1.ReplicaSet, limit *int32) []*skiffappsv1.ReplicaSet {
	keep := int(ptr.Deref(limit, defaultRevisionHistoryLimit))
	var empty []*skiffappsv1.ReplicaSet
	for _, rs := range old {
		if ptr.Deref(rs.Spec.Replicas, 1) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			empty = append(empty, rs)
		}
	}
	if len(empty) <= keep {
		return nil
	}
	sort.SliceStable(empty, func(i, j int) bool { return revision(empty[i]) < revision(empty[j]) })
	return empty[:len(empty)-keep]
}
