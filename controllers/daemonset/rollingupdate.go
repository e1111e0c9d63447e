package daemonset

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// maxUnavailable resolves spec.updateStrategy.rollingUpdate.maxUnavailable
// against the number of nodes that should run the daemon (a percentage
// rounds up, as upstream), defaulting to 1.
func maxUnavailable(ds *skiffappsv1.DaemonSet, desired int) int {
	v := intstr.FromInt32(1)
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil {
		v = *ru.MaxUnavailable
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, desired, true)
	if err != nil || n < 1 {
		// 0 is only valid with a surge, which does not use this; a bad
		// value must not stall the rollout completely.
		return 1
	}
	return n
}

// maxSurge resolves spec.updateStrategy.rollingUpdate.maxSurge: 0 (the
// default) means no surge; a non-zero percentage rounds up to at least 1.
func maxSurge(ds *skiffappsv1.DaemonSet, desired int) int {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return 0
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true)
	if err != nil || n < 0 {
		return 0
	}
	if n == 0 && ru.MaxSurge.Type == intstr.String && ru.MaxSurge.StrVal != "0%" {
		return 1
	}
	return n
}

// updateContext is what a rolling update looks at.
type updateContext struct {
	ds     *skiffappsv1.DaemonSet
	spec   *corev1.PodSpec
	nodes  []*skiffcorev1.Node
	byNode map[string][]*skiffcorev1.Pod
	hash   string
	now    time.Time
}

func (u updateContext) available(pod *skiffcorev1.Pod) bool {
	return podutil.IsAvailable(pod, u.ds.Spec.MinReadySeconds, u.now)
}

// surging reports whether the rollout creates new pods next to old ones.
func (u updateContext) surging() bool { return maxSurge(u.ds, len(u.nodes)) > 0 }

// keepDuringSurge keeps, on a node with several pods, its oldest
// up-to-date pod, and its oldest old pod as long as the new one is not
// available yet; without a new pod, the oldest stays.
func (u updateContext) keepDuringSurge(running []*skiffcorev1.Pod) []*skiffcorev1.Pod {
	oldPod, newPod := oldestOldAndNew(running, u.hash)
	switch {
	case newPod == nil:
		return running[:1]
	case oldPod == nil || u.available(newPod):
		return []*skiffcorev1.Pod{newPod}
	default:
		return []*skiffcorev1.Pod{oldPod, newPod}
	}
}

func oldestOldAndNew(pods []*skiffcorev1.Pod, hash string) (oldPod, newPod *skiffcorev1.Pod) {
	for _, p := range pods { // oldest first
		if isUpdated(p, hash) {
			if newPod == nil {
				newPod = p
			}
		} else if oldPod == nil {
			oldPod = p
		}
	}
	return oldPod, newPod
}

// rollingUpdate picks, for a RollingUpdate, the nodes that get a new pod
// next to their old one (with maxSurge) and the out-of-date pods to delete.
// OnDelete does nothing: pods are replaced only when someone deletes them.
func rollingUpdate(u updateContext) (createOn []string, victims []*skiffcorev1.Pod) {
	if u.ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		return nil, nil
	}
	if u.surging() {
		return u.surge()
	}
	return nil, u.withoutSurge()
}

// withoutSurge deletes old pods, their replacements being created by the
// next sync's placement: an old pod that is not available costs nothing
// and always goes; old available pods go while fewer than maxUnavailable
// nodes are without an available daemon.
func (u updateContext) withoutSurge() []*skiffcorev1.Pod {
	var victims, oldAvailable []*skiffcorev1.Pod
	desired, unavailable := 0, 0
	for _, node := range u.nodes {
		if !nodeEligibility(u.spec, node).shouldRun {
			continue
		}
		desired++
		pods := notTerminating(u.byNode[node.Name])
		if len(pods) != 1 {
			// None yet (or only one being deleted), or duplicates being
			// cleaned: placement's job.
			unavailable++
			continue
		}
		pod := pods[0]
		available := u.available(pod)
		if !available {
			unavailable++
		}
		switch {
		case isUpdated(pod, u.hash):
		case !available:
			victims = append(victims, pod)
		default:
			oldAvailable = append(oldAvailable, pod)
		}
	}
	budget := maxUnavailable(u.ds, desired) - unavailable
	for _, pod := range oldAvailable {
		if budget <= 0 {
			break
		}
		victims = append(victims, pod)
		budget--
	}
	return victims
}

// surge creates new pods next to old available ones on at most maxSurge
// nodes at a time, and deletes an old pod once the new pod beside it is
// available. A node whose old pod is not available gets its new pod at
// once, outside the surge limit, as upstream documents.
func (u updateContext) surge() (createOn []string, victims []*skiffcorev1.Pod) {
	var candidates []string
	desired, surging := 0, 0
	for _, node := range u.nodes {
		if !nodeEligibility(u.spec, node).shouldRun {
			continue
		}
		desired++
		oldPod, newPod := oldestOldAndNew(notTerminating(u.byNode[node.Name]), u.hash)
		switch {
		case oldPod == nil:
		case newPod == nil && !u.available(oldPod):
			createOn = append(createOn, node.Name)
		case newPod == nil:
			candidates = append(candidates, node.Name)
		case u.available(newPod):
			victims = append(victims, oldPod)
		default:
			surging++
		}
	}
	budget := maxSurge(u.ds, desired) - surging
	for _, name := range candidates {
		if budget <= 0 {
			break
		}
		createOn = append(createOn, name)
		budget--
	}
	return createOn, victims
}
