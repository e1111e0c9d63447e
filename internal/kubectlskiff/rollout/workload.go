package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// changeCauseAnnotation records why a revision was made, as upstream.
const changeCauseAnnotation = "kubernetes.io/change-cause"

// podTemplateHashLabel is the label a Deployment's controller adds to each
// ReplicaSet's template; it is not part of the Deployment's template.
const podTemplateHashLabel = "pod-template-hash"

// workload is one Deployment, StatefulSet or DaemonSet, seen through what
// rollout needs of each.
type workload struct {
	kind Kind
	obj  client.Object
}

// newWorkload returns an empty object of the kind, to read into.
func newWorkload(k Kind) workload {
	switch k {
	case Deployment:
		return workload{k, &skiffappsv1.Deployment{}}
	case StatefulSet:
		return workload{k, &skiffappsv1.StatefulSet{}}
	default:
		return workload{k, &skiffappsv1.DaemonSet{}}
	}
}

// newList returns an empty list of the kind, to watch.
func newList(k Kind) client.ObjectList {
	switch k {
	case Deployment:
		return &skiffappsv1.DeploymentList{}
	case StatefulSet:
		return &skiffappsv1.StatefulSetList{}
	default:
		return &skiffappsv1.DaemonSetList{}
	}
}

// template is the object's pod template.
func (w workload) template() *corev1.PodTemplateSpec {
	switch o := w.obj.(type) {
	case *skiffappsv1.Deployment:
		return &o.Spec.Template
	case *skiffappsv1.StatefulSet:
		return &o.Spec.Template
	default:
		return &w.obj.(*skiffappsv1.DaemonSet).Spec.Template
	}
}

// progress is the object's rollout status.
func (w workload) progress(revision int64) Progress {
	switch o := w.obj.(type) {
	case *skiffappsv1.Deployment:
		return DeploymentProgress(o, revision)
	case *skiffappsv1.StatefulSet:
		return StatefulSetProgress(o)
	default:
		return DaemonSetProgress(w.obj.(*skiffappsv1.DaemonSet))
	}
}

// paused tells whether the object is a paused Deployment.
func (w workload) paused() bool {
	d, ok := w.obj.(*skiffappsv1.Deployment)
	return ok && d.Spec.Paused
}

// revision is one entry of an object's rollout history: a Deployment's
// ReplicaSet, or a StatefulSet's or DaemonSet's ControllerRevision.
type revision struct {
	Number      int64
	Template    *corev1.PodTemplateSpec
	ChangeCause string
	// Annotations are the ReplicaSet's, which a Deployment's undo brings
	// back with the template, as upstream.
	Annotations map[string]string
}

// listRevisions returns the object's revisions, lowest first.
func listRevisions(ctx context.Context, c client.Reader, w workload) ([]revision, error) {
	var revs []revision
	if w.kind == Deployment {
		var rss skiffappsv1.ReplicaSetList
		if err := c.List(ctx, &rss, client.InNamespace(w.obj.GetNamespace())); err != nil {
			return nil, fmt.Errorf("listing the ReplicaSets of %s: %w", w.obj.GetName(), err)
		}
		for i := range rss.Items {
			rs := &rss.Items[i]
			if !metav1.IsControlledBy(rs, w.obj) {
				continue
			}
			n, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
			if err != nil {
				continue // not given a revision yet
			}
			revs = append(revs, revision{Number: n, Template: rs.Spec.Template.DeepCopy(),
				ChangeCause: rs.Annotations[changeCauseAnnotation], Annotations: rs.Annotations})
		}
	} else {
		var crs appsv1.ControllerRevisionList
		if err := c.List(ctx, &crs, client.InNamespace(w.obj.GetNamespace())); err != nil {
			return nil, fmt.Errorf("listing the ControllerRevisions of %s: %w", w.obj.GetName(), err)
		}
		for i := range crs.Items {
			cr := &crs.Items[i]
			if !metav1.IsControlledBy(cr, w.obj) {
				continue
			}
			t, err := revisionTemplate(cr)
			if err != nil {
				return nil, err
			}
			revs = append(revs, revision{Number: cr.Revision, Template: t, ChangeCause: cr.Annotations[changeCauseAnnotation]})
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Number < revs[j].Number })
	return revs, nil
}

// revisionTemplate decodes the template a ControllerRevision restores. Its
// data is the patch {"spec":{"template":...}} (with a "$patch":"replace"
// directive that decoding ignores), as upstream.
func revisionTemplate(cr *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var data struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(cr.Data.Raw, &data); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s: %w", cr.Name, err)
	}
	return &data.Spec.Template, nil
}

// findRevision returns revision want, or for 0 the one before the highest
// (the previous template), as kubectl's undo.
func findRevision(revs []revision, want int64) (revision, error) {
	if want == 0 {
		if len(revs) < 2 {
			return revision{}, fmt.Errorf("no rollout history found: there is no previous revision to go back to")
		}
		return revs[len(revs)-2], nil
	}
	for _, r := range revs {
		if r.Number == want {
			return r, nil
		}
	}
	return revision{}, fmt.Errorf("unable to find specified revision %d in history", want)
}
