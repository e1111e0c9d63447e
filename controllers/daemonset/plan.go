package daemonset

import (
	"slices"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// daemonPodSpec is the pod spec every daemon pod starts from: the template
// with the automatic daemon tolerations. Eligibility is decided on it, so
// that a not-ready node keeps its pod.
func daemonPodSpec(ds *skiffappsv1.DaemonSet) *corev1.PodSpec {
	spec := ds.Spec.Template.Spec.DeepCopy()
	spec.Tolerations = withDaemonTolerations(spec)
	return spec
}

// groupByNode sorts the DaemonSet's pods (some may be terminating) by the
// node they are for, each node's bound and oldest first. Pods for no node
// at all (their affinity was edited away) are returned apart.
func groupByNode(pods []*skiffcorev1.Pod) (byNode map[string][]*skiffcorev1.Pod, nowhere []*skiffcorev1.Pod) {
	byNode = map[string][]*skiffcorev1.Pod{}
	for _, p := range pods {
		if n := targetNode(p); n != "" {
			byNode[n] = append(byNode[n], p)
		} else {
			nowhere = append(nowhere, p)
		}
	}
	for _, list := range byNode {
		sort.SliceStable(list, func(i, j int) bool { return olderThan(list[i], list[j]) })
	}
	return byNode, nowhere
}

// olderThan orders a node's pods as upstream's
// podByCreationTimestampAndPhase: bound pods first, then the oldest.
func olderThan(a, b *skiffcorev1.Pod) bool {
	if aBound, bBound := a.Spec.NodeName != "", b.Spec.NodeName != ""; aBound != bBound {
		return aBound
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// plan is what one sync changes: the nodes that get a new pod and the pods
// that go. Failed pods are apart: they go only once their node is out of
// back-off.
type plan struct {
	createOn []string
	remove   []*skiffcorev1.Pod
	failed   []*skiffcorev1.Pod
}

// placement decides, as upstream's podsShouldBeOnNode, where pods are
// missing and which are in excess: a node that should run the daemon and
// has no pod (not even a terminating one) gets one; a node that may no
// longer run it loses its pods; a failed pod is to be killed (its
// replacement is created once its deletion is seen) and a succeeded one
// goes; duplicates on one node go, except those keep picks (the oldest,
// or during a surge the old and new pod of a node being updated); pods
// for nodes that no longer exist go. Pods being deleted are never deleted
// again.
func placement(spec *corev1.PodSpec, nodes []*skiffcorev1.Node, byNode map[string][]*skiffcorev1.Pod,
	nowhere []*skiffcorev1.Pod, keep func(running []*skiffcorev1.Pod) []*skiffcorev1.Pod) plan {
	var p plan
	p.remove = append(p.remove, notTerminating(nowhere)...)
	known := make(map[string]bool, len(nodes))
	for _, node := range nodes {
		known[node.Name] = true
		e := nodeEligibility(spec, node)
		if !e.shouldContinueRunning {
			p.remove = append(p.remove, notTerminating(byNode[node.Name])...)
			continue
		}
		var running []*skiffcorev1.Pod
		for _, pod := range notTerminating(byNode[node.Name]) {
			switch pod.Status.Phase {
			case corev1.PodFailed:
				p.failed = append(p.failed, pod)
			case corev1.PodSucceeded:
				p.remove = append(p.remove, pod)
			default:
				running = append(running, pod)
			}
		}
		switch {
		// A terminating pod holds its node: the replacement waits until
		// the node has stopped it, as upstream.
		case len(byNode[node.Name]) == 0 && e.shouldRun:
			p.createOn = append(p.createOn, node.Name)
		case len(running) > 1:
			kept := keep(running)
			for _, pod := range running {
				if !slices.Contains(kept, pod) {
					p.remove = append(p.remove, pod)
				}
			}
		}
	}
	for name, pods := range byNode {
		if !known[name] {
			p.remove = append(p.remove, notTerminating(pods)...)
		}
	}
	return p
}

// notTerminating returns the pods that are not being deleted: the ones a
// sync may still delete, and that a rollout counts.
func notTerminating(pods []*skiffcorev1.Pod) []*skiffcorev1.Pod {
	var out []*skiffcorev1.Pod
	for _, p := range pods {
		if !podutil.IsTerminating(p) {
			out = append(out, p)
		}
	}
	return out
}

// keepOldest keeps a node's oldest pod.
func keepOldest(running []*skiffcorev1.Pod) []*skiffcorev1.Pod { return running[:1] }

// isUpdated reports whether pod runs the current template.
func isUpdated(pod *skiffcorev1.Pod, hash string) bool {
	return pod.Labels[appsv1.ControllerRevisionHashLabelKey] == hash
}

// calculateStatus counts, as upstream's updateDaemonSetStatus, the nodes
// that should run the daemon and what their first pod (bound, oldest;
// terminating pods included, as their node still runs them) shows, and
// the nodes running it that should not.
func calculateStatus(ds *skiffappsv1.DaemonSet, spec *corev1.PodSpec, nodes []*skiffcorev1.Node,
	byNode map[string][]*skiffcorev1.Pod, hash string, now time.Time) appsv1.DaemonSetStatus {
	status := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Generation,
		CollisionCount:     ds.Status.CollisionCount,
		Conditions:         ds.Status.Conditions,
	}
	for _, node := range nodes {
		pods := byNode[node.Name]
		e := nodeEligibility(spec, node)
		if !e.shouldRun {
			if len(pods) > 0 {
				status.NumberMisscheduled++
			}
			continue
		}
		status.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		status.CurrentNumberScheduled++
		pod := pods[0]
		if podutil.IsReady(pod) {
			status.NumberReady++
		}
		if podutil.IsAvailable(pod, ds.Spec.MinReadySeconds, now) {
			status.NumberAvailable++
		}
		if isUpdated(pod, hash) {
			status.UpdatedNumberScheduled++
		}
	}
	status.NumberUnavailable = status.DesiredNumberScheduled - status.NumberAvailable
	return status
}
