package replicaset

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// podsToDelete picks the n pods a ReplicaSet scales down first: the ones
// whose loss hurts least. pods is not reordered.
func podsToDelete(pods []*skiffcorev1.Pod, n int) []*skiffcorev1.Pod {
	if n <= 0 {
		return nil
	}
	ranked := slices.Clone(pods)
	slices.SortStableFunc(ranked, compareForDeletion)
	return ranked[:min(n, len(ranked))]
}

// phaseOrder ranks phases from the least to the most useful: a pod still
// pending serves nothing yet, an unknown one may be lost.
var phaseOrder = map[corev1.PodPhase]int{
	corev1.PodPending: 0,
	corev1.PodUnknown: 1,
	corev1.PodRunning: 2,
}

// compareForDeletion orders two pods of a ReplicaSet by how readily they go
// when it scales down, as upstream's ActivePods ranking: negative means a
// goes first. Each rule only breaks the ties of the rules before it:
//  1. not yet on a node before on a node;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. ready for less time before ready for longer;
//  5. more container restarts before fewer;
//  6. newer before older;
//  7. by name, so that the order is the same on every pass.
func compareForDeletion(a, b *skiffcorev1.Pod) int {
	if x, y := a.Spec.NodeName != "", b.Spec.NodeName != ""; x != y {
		return boolFirst(!x)
	}
	if x, y := phaseOrder[a.Status.Phase], phaseOrder[b.Status.Phase]; x != y {
		return x - y
	}
	readyA, readyB := podutil.IsReady(a), podutil.IsReady(b)
	if readyA != readyB {
		return boolFirst(!readyA)
	}
	if readyA {
		if c := laterFirst(readySince(a), readySince(b)); c != 0 {
			return c
		}
	}
	if x, y := maxRestarts(a), maxRestarts(b); x != y {
		return y - x
	}
	if c := laterFirst(a.CreationTimestamp.Time, b.CreationTimestamp.Time); c != 0 {
		return c
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// boolFirst returns -1 when a's property (true) puts it first, else 1.
func boolFirst(aFirst bool) int {
	if aFirst {
		return -1
	}
	return 1
}

// laterFirst orders the later time first; an unknown (zero) time counts as
// the latest, so that a pod we know least about goes first.
func laterFirst(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero():
		return -1
	case b.IsZero():
		return 1
	case a.After(b):
		return -1
	default:
		return 1
	}
}

// readySince is when the pod last became ready, or zero.
func readySince(p *skiffcorev1.Pod) time.Time {
	if c := podutil.Condition(&p.Status, corev1.PodReady); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// maxRestarts is the highest restart count among the pod's containers.
func maxRestarts(p *skiffcorev1.Pod) int {
	most := 0
	for _, s := range p.Status.ContainerStatuses {
		most = max(most, int(s.RestartCount))
	}
	return most
}
