package statefulset

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// slotState is what the controller sees at one ordinal.
type slotState int

const (
	// missing: no pod with this ordinal's name exists.
	missing slotState = iota
	// terminating: the pod is being deleted and still holds the name.
	terminating
	// finished: the pod failed or succeeded and must be replaced.
	finished
	// starting: the pod is active but not yet Running and Ready.
	starting
	// healthy: the pod is Running and Ready.
	healthy
)

// slot is one ordinal's pod, as the planner sees it.
type slot struct {
	state slotState
	// updated tells whether the pod runs the update revision.
	updated bool
}

// planInput is everything the planner needs: the set's policy and the
// state of every ordinal that has a pod (and of every wanted one).
type planInput struct {
	replicas  int
	parallel  bool
	onDelete  bool
	partition int
	// slots maps each ordinal to its pod; absent ordinals are missing.
	slots map[int]slot
}

// plan is what one sync does: the ordinals to create, and the ordinals
// whose pods to delete (condemned, finished, or outdated).
type plan struct {
	create []int
	delete []int
}

// decide returns the next step for a set, as upstream's StatefulSet
// control: first replace and create the wanted ordinals in increasing
// order, then remove the condemned ones (ordinal >= replicas) from the
// highest, then roll the outdated pods from the highest ordinal down to the
// partition. Under OrderedReady each step waits for every lower ordinal to
// be Running and Ready, and does one thing at a time; under Parallel it
// does everything at once, except that a rolling update always goes one
// pod at a time.
func decide(in planInput) plan {
	var p plan
	ordered := !in.parallel
	allHealthy := true

	// 1. The wanted ordinals, lowest first.
	for i := range in.replicas {
		s, ok := in.slots[i]
		if !ok {
			s.state = missing
		}
		switch s.state {
		case missing:
			p.create = append(p.create, i)
			if ordered {
				return p
			}
		case finished:
			// Replaced once the deleted pod is gone: the name is taken
			// until then.
			p.delete = append(p.delete, i)
			if ordered {
				return p
			}
		case terminating, starting:
			if ordered {
				return p
			}
		}
		if s.state != healthy {
			allHealthy = false
		}
	}

	// 2. The condemned ordinals, highest first.
	condemned := condemnedOrdinals(in)
	for _, i := range condemned {
		s := in.slots[i]
		if s.state == terminating {
			if ordered {
				return p
			}
			continue
		}
		if ordered && !allHealthy {
			// Upstream scales down only while the rest are healthy.
			return p
		}
		p.delete = append(p.delete, i)
		if ordered {
			return p
		}
	}
	if len(p.create) > 0 || len(p.delete) > 0 || len(condemned) > 0 || !allHealthy {
		return p
	}

	// 3. The rolling update, highest ordinal first, down to the partition,
	// one pod at a time and only while everything else is healthy.
	if in.onDelete {
		return p
	}
	for i := in.replicas - 1; i >= in.partition; i-- {
		if !in.slots[i].updated {
			p.delete = append(p.delete, i)
			return p
		}
	}
	return p
}

// condemnedOrdinals returns the ordinals at or above replicas that have a
// pod, highest first.
func condemnedOrdinals(in planInput) []int {
	var out []int
	for i := range in.slots {
		if i >= in.replicas {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// partitionOf returns the RollingUpdate partition, 0 when unset.
func partitionOf(s appsv1.StatefulSetUpdateStrategy) int {
	if s.RollingUpdate == nil || s.RollingUpdate.Partition == nil {
		return 0
	}
	return int(*s.RollingUpdate.Partition)
}
