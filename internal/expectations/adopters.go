package expectations

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// SelectorAdopters returns a PodEvents.Adopters for owners that choose
// their pods by a label selector, as upstream's getPodReplicaSets and
// friends: it lists the owners in the pod's namespace into a list from
// newList, and names those whose selector, read by selectorOf, matches the
// pod's labels. An empty or invalid selector adopts nothing.
func SelectorAdopters(c client.Reader, newList func() client.ObjectList,
	selectorOf func(client.Object) *metav1.LabelSelector) func(context.Context, string, map[string]string) []string {
	return func(ctx context.Context, namespace string, podLabels map[string]string) []string {
		list := newList()
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			logf.FromContext(ctx).Error(err, "listing owners for an orphan pod", "namespace", namespace)
			return nil
		}
		var owners []client.Object
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			if obj, ok := o.(client.Object); ok {
				owners = append(owners, obj)
			}
			return nil
		})
		return matchingOwners(owners, selectorOf, podLabels)
	}
}

// matchingOwners names the owners whose selector matches podLabels.
func matchingOwners(owners []client.Object, selectorOf func(client.Object) *metav1.LabelSelector, podLabels map[string]string) []string {
	var names []string
	for _, owner := range owners {
		selector, err := metav1.LabelSelectorAsSelector(selectorOf(owner))
		if err == nil && !selector.Empty() && selector.Matches(labels.Set(podLabels)) {
			names = append(names, owner.GetName())
		}
	}
	return names
}
