package statefulset

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	// ready: the pod is Running and Ready, but not yet for
	// minReadySeconds.
	ready
	// available: the pod is Running and has been Ready for
	// minReadySeconds.
	available
)

// slot is one ordinal's pod, as the planner sees it.
type slot struct {
	state slotState
	// updated tells whether the pod runs the update revision.
	updated bool
}

// planInput is everything the planner needs: the set's policy and the
// state of every ordinal that has a pod.
type planInput struct {
	// start and replicas give the wanted ordinals: start to
	// start+replicas-1 (spec.ordinals.start, spec.replicas).
	start    int
	replicas int
	parallel bool
	onDelete bool
	// partition counts from start: the wanted ordinals below
	// start+partition stay at the current revision.
	partition int
	// maxUnavailable is the resolved rollingUpdate.maxUnavailable; less
	// than 1 counts as 1.
	maxUnavailable int
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
// order, then remove the condemned ones (outside the wanted range) from the
// highest, then roll the outdated pods from the highest ordinal down to the
// partition, at most maxUnavailable unavailable at a time. Under
// OrderedReady each of the first two steps waits for every lower ordinal to
// be available and does one thing at a time, and the rollout starts only
// once everything is in place; under Parallel the steps do everything at
// once.
func decide(in planInput) plan {
	var p plan
	if stop := in.fillWanted(&p); stop {
		return p
	}
	if stop := in.removeCondemned(&p); stop {
		return p
	}
	if !in.onDelete {
		in.rollOut(&p)
	}
	return p
}

// slot returns the state of ordinal i, missing when it has no pod.
func (in planInput) slot(i int) slot {
	s, ok := in.slots[i]
	if !ok {
		s.state = missing
	}
	return s
}

// wanted returns the ordinals the set should have, lowest first.
func (in planInput) wanted() []int {
	out := make([]int, in.replicas)
	for i := range out {
		out[i] = in.start + i
	}
	return out
}

// fillWanted creates the missing wanted ordinals and deletes the finished
// ones, lowest first. Under OrderedReady it stops at the first ordinal that
// is not available yet.
func (in planInput) fillWanted(p *plan) (stop bool) {
	ordered := !in.parallel
	for _, i := range in.wanted() {
		switch in.slot(i).state {
		case missing:
			p.create = append(p.create, i)
		case finished:
			// Replaced once the deleted pod is gone: the name is taken
			// until then.
			p.delete = append(p.delete, i)
		case available:
			continue
		}
		if ordered {
			return true
		}
	}
	return false
}

// removeCondemned deletes the pods outside the wanted range, highest first.
// Under OrderedReady it deletes one at a time, waits for it to go, and
// waits while a condemned pod other than the lowest unavailable one is not
// available: a scale-down does not take a broken set further down.
func (in planInput) removeCondemned(p *plan) (stop bool) {
	ordered := !in.parallel
	condemned := in.condemned()
	firstUnavailable := -1
	for _, i := range slices.Backward(condemned) {
		if in.slot(i).state != available {
			firstUnavailable = i
			break
		}
	}
	for _, i := range condemned {
		state := in.slot(i).state
		switch {
		case state == terminating:
			if ordered {
				return true
			}
			continue
		case ordered && state != available && i != firstUnavailable:
			return true
		}
		p.delete = append(p.delete, i)
		if ordered {
			return true
		}
	}
	return false
}

// condemned returns the ordinals outside the wanted range that have a pod,
// highest first.
func (in planInput) condemned() []int {
	var out []int
	for i := range in.slots {
		if i < in.start || i >= in.start+in.replicas {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// rollOut deletes outdated pods from the highest wanted ordinal down to the
// partition, keeping at most maxUnavailable wanted pods unavailable, as
// upstream's MaxUnavailableStatefulSet. Under Parallel, the outdated pods
// that are unavailable anyway go first and do not use up the budget.
func (in planInput) rollOut(p *plan) {
	deleting := map[int]bool{}
	for _, i := range p.delete {
		deleting[i] = true
	}
	// unavailable tells whether the pod at i is out of service, or about
	// to be.
	unavailable := func(i int) bool {
		s := in.slot(i).state
		return s != available || deleting[i]
	}
	outdated := func(i int) bool {
		s := in.slot(i)
		return !s.updated && s.state != missing && s.state != terminating && !deleting[i]
	}
	var down, downOutdated int
	for _, i := range in.wanted() {
		if unavailable(i) {
			down++
			if outdated(i) {
				downOutdated++
			}
		}
	}
	budget := max(in.maxUnavailable, 1) - down
	if budget <= 0 && (!in.parallel || downOutdated == 0) {
		return
	}
	targets := slices.Backward(in.wanted()[min(max(in.partition, 0), in.replicas):])
	if in.parallel {
		for _, i := range targets {
			if outdated(i) && unavailable(i) {
				p.delete = append(p.delete, i)
			}
		}
	}
	for _, i := range targets {
		if budget <= 0 {
			return
		}
		if outdated(i) && !unavailable(i) {
			p.delete = append(p.delete, i)
			budget--
		}
	}
}

// partitionOf returns the RollingUpdate partition, 0 when unset.
func partitionOf(s appsv1.StatefulSetUpdateStrategy) int {
	if s.RollingUpdate == nil || s.RollingUpdate.Partition == nil {
		return 0
	}
	return int(*s.RollingUpdate.Partition)
}

// maxUnavailableOf resolves rollingUpdate.maxUnavailable against the
// replicas, as upstream: 1 when unset, a percentage rounded down, and never
// less than 1, so that a rollout always moves.
func maxUnavailableOf(s appsv1.StatefulSetUpdateStrategy, replicas int) (int, error) {
	value := intstr.FromInt32(1)
	if s.RollingUpdate != nil && s.RollingUpdate.MaxUnavailable != nil {
		value = *s.RollingUpdate.MaxUnavailable
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&value, replicas, false)
	if err != nil {
		return 0, err
	}
	return max(n, 1), nil
}
