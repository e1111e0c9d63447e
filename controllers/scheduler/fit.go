package scheduler

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// resourceFit refuses nodes whose allocatable resources, less what the
// bound and assumed pods request, cannot hold the pod's requests, and nodes
// already running as many pods as they allow.
type resourceFit struct{}

func (resourceFit) Name() string { return "NodeResourcesFit" }

func (resourceFit) Filter(s *cycleState, n *NodeInfo) *Status {
	var reasons []string
	tooBig := false
	if int64(len(n.pods))+1 > n.allowedPods {
		reasons = append(reasons, "Too many pods")
	}
	req, used, alloc := &s.pod.requests, &n.requested, &n.allocatable
	check := func(name string, want, inUse, capacity int64) {
		if want > 0 && want > capacity-inUse {
			reasons = append(reasons, "Insufficient "+name)
			tooBig = tooBig || want > capacity
		}
	}
	check("cpu", req.milliCPU, used.milliCPU, alloc.milliCPU)
	check("memory", req.memory, used.memory, alloc.memory)
	check("ephemeral-storage", req.storage, used.storage, alloc.storage)
	if len(req.scalar) > 0 {
		names := make([]string, 0, len(req.scalar))
		for name := range req.scalar {
			names = append(names, string(name))
		}
		sort.Strings(names)
		for _, name := range names {
			r := corev1.ResourceName(name)
			check(name, req.scalar[r], used.scalar[r], alloc.scalar[r])
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	// A pod that asks for more than the whole node has will not fit however
	// many pods go, so preemption should not try.
	return &Status{Reasons: reasons, Unresolvable: tooBig}
}
