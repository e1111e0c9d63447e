package scheduler

import (
	"fmt"
	"sort"
)

// Preemption's reasons, upstream's words, per node.
const (
	preemptionNotHelpful = "Preemption is not helpful for scheduling"
	noVictimsFound       = "No preemption victims found for incoming pod"
)

// preemption is the outcome of a successful preemption: the node promised
// to the pod and the pods that must go for it.
type preemption struct {
	node    *NodeInfo
	victims []*PodInfo
}

// eligibleToPreempt says why a pod may not preempt, or "" when it may. A
// pod already nominated to a node where lower-priority pods are still
// terminating waits for them rather than evicting more.
func eligibleToPreempt(pod *PodInfo, nodes []*NodeInfo) string {
	if pod.PreemptNever {
		return "preemption: not eligible due to preemptionPolicy=Never."
	}
	name := pod.Pod.Status.NominatedNodeName
	if name == "" {
		return ""
	}
	for _, n := range nodes {
		if n.Name != name {
			continue
		}
		for _, p := range n.pods {
			if p.Pod.DeletionTimestamp != nil && p.Priority < pod.Priority {
				return "preemption: not eligible due to a terminating pod on the nominated node."
			}
		}
	}
	return ""
}

// preempt looks for the node where evicting the fewest, least important
// lower-priority pods makes the pod fit, as upstream's default preemption:
// only nodes whose failure eviction can fix are tried; on each, every
// lower-priority pod is removed, then pods are given back from the most
// important down while the pod still fits; the node whose most important
// victim is least important wins, then the smallest sum of victim
// priorities, then the fewest victims. It returns nil and fills
// fe.PostFilter when there is no such node.
func (a *algorithm) preempt(s *cycleState, nodes []*NodeInfo, fe *FitError) *preemption {
	if why := eligibleToPreempt(s.pod, nodes); why != "" {
		fe.PostFilter = why
		return nil
	}
	counts := map[string]int{}
	var best *preemption
	for _, n := range nodes {
		st := fe.Statuses[n.Name]
		if st == nil {
			continue
		}
		if st.Unresolvable {
			counts[preemptionNotHelpful]++
			continue
		}
		victims, ok := a.selectVictims(s, n)
		if !ok {
			counts[noVictimsFound]++
			continue
		}
		c := &preemption{node: n, victims: victims}
		if best == nil || betterCandidate(c, best) {
			best = c
		}
	}
	if best == nil {
		fe.PostFilter = fmt.Sprintf("preemption: 0/%d nodes are available: %s.", fe.NumNodes, histogram(counts))
	}
	return best
}

// selectVictims finds the minimal set of lower-priority pods on n whose
// removal lets the pod fit.
func (a *algorithm) selectVictims(s *cycleState, n *NodeInfo) ([]*PodInfo, bool) {
	var lower []*PodInfo
	for _, p := range n.pods {
		// Terminating pods are already leaving: evicting them again
		// frees nothing sooner.
		if p.Priority < s.pod.Priority && p.Pod.DeletionTimestamp == nil {
			lower = append(lower, p)
		}
	}
	if len(lower) == 0 {
		return nil, false
	}
	trial, ts := n.Clone(), s.clone()
	for _, p := range lower {
		trial.RemovePod(p)
		ts.removePod(p, n)
	}
	if a.filterNode(ts, trial) != nil {
		return nil, false
	}
	// Give back the most important pods first, so that those are the ones
	// kept; older pods before newer at equal priority.
	sort.SliceStable(lower, func(i, j int) bool {
		if lower[i].Priority != lower[j].Priority {
			return lower[i].Priority > lower[j].Priority
		}
		return lower[i].Pod.CreationTimestamp.Before(&lower[j].Pod.CreationTimestamp)
	})
	var victims []*PodInfo
	for _, p := range lower {
		trial.AddPod(p)
		ts.addPod(p, n)
		if a.filterNode(ts, trial) != nil {
			trial.RemovePod(p)
			ts.removePod(p, n)
			victims = append(victims, p)
		}
	}
	return victims, len(victims) > 0
}

// betterCandidate orders candidates: lowest highest-victim priority, then
// lowest sum of priorities, then fewest victims.
func betterCandidate(a, b *preemption) bool {
	am, as := victimPriorities(a.victims)
	bm, bs := victimPriorities(b.victims)
	if am != bm {
		return am < bm
	}
	if as != bs {
		return as < bs
	}
	return len(a.victims) < len(b.victims)
}

func victimPriorities(victims []*PodInfo) (highest int32, sum int64) {
	highest = victims[0].Priority
	for _, v := range victims {
		highest = max(highest, v.Priority)
		sum += int64(v.Priority)
	}
	return highest, sum
}
