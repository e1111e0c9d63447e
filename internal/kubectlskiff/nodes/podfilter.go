package nodes

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// drainRules are drain's flags that decide which pods it may delete.
type drainRules struct {
	IgnoreDaemonSets   bool
	DeleteEmptyDirData bool
	Force              bool
}

// A rule is one of kubectl drain's checks: the pods it catches are refused
// (the whole drain stops), unless its flag is given, when they are skipped
// or deleted with a warning.
type rule struct {
	catches func(*skiffcorev1.Pod) bool
	allowed func(drainRules) bool
	// deleteWhenAllowed: an allowed pod is deleted (else skipped).
	deleteWhenAllowed bool
	refusal, warning  string
}

// rules are kubectl drain's, in its order and words. A finished pod is
// caught by none: it can always go.
var rules = []rule{
	{
		catches: isDaemonSetPod, allowed: func(r drainRules) bool { return r.IgnoreDaemonSets },
		refusal: "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)",
		warning: "ignoring DaemonSet-managed Pods",
	},
	{
		catches: hasLocalStorage, allowed: func(r drainRules) bool { return r.DeleteEmptyDirData },
		deleteWhenAllowed: true,
		refusal:           "Pods with local storage (use --delete-emptydir-data to override)",
		warning:           "deleting Pods with local storage",
	},
	{
		catches: func(p *skiffcorev1.Pod) bool { return metav1.GetControllerOf(p) == nil }, allowed: func(r drainRules) bool { return r.Force },
		deleteWhenAllowed: true,
		refusal:           "Pods that declare no controller (use --force to override)",
		warning:           "deleting Pods that declare no controller",
	},
}

// isDaemonSetPod tells whether a DaemonSet (skiff's or upstream's)
// controls the pod: its controller would put it back at once.
func isDaemonSetPod(p *skiffcorev1.Pod) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "DaemonSet"
}

// hasLocalStorage tells whether the pod has an emptyDir volume, whose data
// goes with the pod.
func hasLocalStorage(p *skiffcorev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

// drainPlan is what drain will do with a node's pods.
type drainPlan struct {
	// Delete are the pods to delete, in the order listed.
	Delete []*skiffcorev1.Pod
	// Warnings and Refusals are kubectl's lines, one per rule, naming the
	// pods ("ignoring DaemonSet-managed Pods: default/agent-x").
	Warnings []string
	Refusals []string
}

// planDrain judges every pod of a node by the rules: each pod is deleted
// unless a rule skips or refuses it.
func planDrain(pods []*skiffcorev1.Pod, r drainRules) drainPlan {
	warned := make([][]string, len(rules))
	refused := make([][]string, len(rules))
	var plan drainPlan
	for _, p := range pods {
		name := p.Namespace + "/" + p.Name
		keep := false
		for i, ru := range rules {
			if podutil.IsTerminal(p) || !ru.catches(p) {
				continue
			}
			// The first rule that keeps a pod decides, as kubectl's filters.
			if !ru.allowed(r) {
				refused[i] = append(refused[i], name)
				keep = true
				break
			}
			warned[i] = append(warned[i], name)
			if !ru.deleteWhenAllowed {
				keep = true
				break
			}
		}
		if !keep {
			plan.Delete = append(plan.Delete, p)
		}
	}
	for i, ru := range rules {
		if len(warned[i]) > 0 {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s: %s", ru.warning, strings.Join(warned[i], ", ")))
		}
		if len(refused[i]) > 0 {
			plan.Refusals = append(plan.Refusals, fmt.Sprintf("cannot delete %s: %s", ru.refusal, strings.Join(refused[i], ", ")))
		}
	}
	return plan
}

// refusal is the plan's refusals as one error, as kubectl aggregates
// several ("[a, b]"), or nil.
func (p drainPlan) refusal() error {
	switch len(p.Refusals) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s", p.Refusals[0])
	}
	return fmt.Errorf("[%s]", strings.Join(p.Refusals, ", "))
}

// podNames lists pods as namespace/name, for messages.
func podNames(pods []*skiffcorev1.Pod) string {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Namespace + "/" + p.Name
	}
	return strings.Join(names, ", ")
}
