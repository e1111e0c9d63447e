package scheduler

import (
	"fmt"
	"sort"
	"strings"
)

// noNodesMessage is upstream's message when the cluster has no node.
const noNodesMessage = "no nodes available to schedule pods"

// failureMessage renders a FitError as upstream does: "0/5 nodes are
// available: 3 Insufficient cpu, 2 node(s) had untolerated taint
// {dedicated: gpu}. preemption: ...". Reasons are sorted by count, most
// frequent first, then by name.
func failureMessage(e *FitError) string {
	if e.NumNodes == 0 {
		return noNodesMessage
	}
	counts := map[string]int{}
	for _, st := range e.Statuses {
		for _, r := range st.Reasons {
			counts[r]++
		}
	}
	msg := fmt.Sprintf("0/%d nodes are available: %s.", e.NumNodes, histogram(counts))
	if e.PostFilter != "" {
		msg += " " + e.PostFilter
	}
	return msg
}

// histogram renders reason counts as "3 Insufficient cpu, 2 ...".
func histogram(counts map[string]int) string {
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if counts[reasons[i]] != counts[reasons[j]] {
			return counts[reasons[i]] > counts[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%d %s", counts[r], r)
	}
	return strings.Join(parts, ", ")
}
