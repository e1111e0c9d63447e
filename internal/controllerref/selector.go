package controllerref

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Selector turns a workload's spec.selector into a label selector. An
// invalid or empty one (which would claim every pod in the namespace) gets
// upstream's InvalidSelector Warning on the owner and ok false: the API
// refuses such selectors, an old object may still have one, and retrying
// cannot help, so the caller waits for an edit.
func Selector(rec events.EventRecorder, owner runtime.Object, ls *metav1.LabelSelector) (labels.Selector, bool) {
	selector, err := metav1.LabelSelectorAsSelector(ls)
	if err == nil && selector.Empty() {
		err = errors.New("an empty selector would select every pod in the namespace")
	}
	if err != nil {
		rec.Eventf(owner, nil, corev1.EventTypeWarning, "InvalidSelector", "Sync", "Invalid selector: %v", err)
		return nil, false
	}
	return selector, true
}
