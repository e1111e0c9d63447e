package job

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
)

// podSelector is the selector a Job claims pods by. With manualSelector,
// it is the user's spec.selector. Otherwise it is the one upstream's
// apiserver generates, controller-uid=<the Job's UID>: no apiserver code
// fills spec.selector for a custom resource, so the controller derives it
// (and ignores spec.selector, which upstream would have refused).
func podSelector(job *skiffbatchv1.Job) (labels.Selector, error) {
	if !ptr.Deref(job.Spec.ManualSelector, false) {
		req, err := labels.NewRequirement(labelControllerUID, selection.Equals, []string{string(job.UID)})
		if err != nil {
			return nil, fmt.Errorf("the Job's uid %q is not a label value: %w", job.UID, err)
		}
		return labels.NewSelector().Add(*req), nil
	}
	if job.Spec.Selector == nil {
		return nil, errors.New("spec.selector: required when manualSelector is true")
	}
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("spec.selector: %w", err)
	}
	if selector.Empty() {
		return nil, errors.New("spec.selector: must not be empty: it would select every pod in the namespace")
	}
	return selector, nil
}

// claimPods returns the pods the Job controls once it has adopted the
// orphans its selector matches (adding the tracking finalizer, so that
// their results are counted) and released its pods that no longer match
// (removing it), as upstream's getPodsForJob. controlled are the pods it
// controlled before.
func (r *Reconciler) claimPods(ctx context.Context, job *skiffbatchv1.Job, selector labels.Selector, controlled []*skiffcorev1.Pod) ([]*skiffcorev1.Pod, error) {
	var matching skiffcorev1.PodList
	if err := r.List(ctx, &matching, client.InNamespace(job.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods matching %s: %w", selector, err)
	}
	candidates := controlled
	seen := map[types.UID]bool{}
	for _, p := range controlled {
		seen[p.UID] = true
	}
	for i := range matching.Items {
		if p := &matching.Items[i]; !seen[p.UID] {
			candidates = append(candidates, p)
		}
	}
	claimer := &controllerref.Claimer{Client: r.Client, APIReader: r.APIReader, Owner: job, Selector: selector, Finalizer: trackingFinalizer}
	return controllerref.Claim(ctx, claimer, candidates)
}

// adopters names the Jobs in namespace whose selector matches an orphan
// pod's labels: they are woken to adopt it.
func (r *Reconciler) adopters(ctx context.Context, namespace string, podLabels map[string]string) []string {
	var list skiffbatchv1.JobList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing Jobs for an orphan pod", "namespace", namespace)
		return nil
	}
	var names []string
	for i := range list.Items {
		selector, err := podSelector(&list.Items[i])
		if err == nil && selector.Matches(labels.Set(podLabels)) {
			names = append(names, list.Items[i].Name)
		}
	}
	return names
}
