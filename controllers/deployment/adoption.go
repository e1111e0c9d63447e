package deployment

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/controllerref"
)

// claimReplicaSets returns the ReplicaSets the Deployment controls, once it
// has adopted the orphans its selector matches and released its own that no
// longer match, as upstream's getReplicaSetsForDeployment. A released
// ReplicaSet keeps its pods: it is simply no longer part of the rollout.
func (r *Reconciler) claimReplicaSets(ctx context.Context, d *skiffappsv1.Deployment) ([]*skiffappsv1.ReplicaSet, error) {
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		// The API refuses such a selector, and spec.selector is immutable.
		return nil, fmt.Errorf("spec.selector of %s: %w", d.Name, err)
	}
	var matching, controlled skiffappsv1.ReplicaSetList
	if err := r.List(ctx, &matching, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing ReplicaSets matching %s: %w", selector, err)
	}
	if err := r.List(ctx, &controlled, client.InNamespace(d.Namespace), controllerref.ControlledBy(d.UID)); err != nil {
		return nil, fmt.Errorf("listing the ReplicaSets of %s: %w", d.Name, err)
	}
	seen := map[types.UID]bool{}
	var candidates []*skiffappsv1.ReplicaSet
	for _, items := range [][]skiffappsv1.ReplicaSet{controlled.Items, matching.Items} {
		for i := range items {
			if rs := &items[i]; !seen[rs.UID] {
				seen[rs.UID] = true
				candidates = append(candidates, rs)
			}
		}
	}
	claimer := &controllerref.Claimer{Client: r.Client, APIReader: r.APIReader, Owner: d, Selector: selector}
	return controllerref.Claim(ctx, claimer, candidates)
}

// adopters wakes the Deployments that may adopt an orphan ReplicaSet: those
// in its namespace whose selector matches its labels, as upstream's
// addReplicaSet and updateReplicaSet. A ReplicaSet with a controller wakes
// its owner through Owns.
func (r *Reconciler) adopters(ctx context.Context, obj client.Object) []reconcile.Request {
	if metav1.GetControllerOfNoCopy(obj) != nil {
		return nil
	}
	var list skiffappsv1.DeploymentList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "listing Deployments for an orphan ReplicaSet", "replicaSet", client.ObjectKeyFromObject(obj))
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		d := &list.Items[i]
		selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !selector.Empty() && selector.Matches(labels.Set(obj.GetLabels())) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(d)})
		}
	}
	return reqs
}
