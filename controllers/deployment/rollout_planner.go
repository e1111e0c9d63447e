package deployment

import (
	"fmt"
	"math"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Annotations the controller keeps on every ReplicaSet it scales, as upstream.
// The planner reads them back to tell a scaling event (spec.replicas changed)
// from a rollout step, and to scale ReplicaSets in proportion to their size.
const (
	// DesiredReplicasAnnotation is the Deployment's spec.replicas when the
	// ReplicaSet was last scaled by the controller.
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	// MaxReplicasAnnotation is spec.replicas + maxSurge at that moment.
	MaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas"
)

// defaultMaxSurgeAndUnavailable is upstream's default for both bounds.
var defaultMaxSurgeAndUnavailable = intstr.FromString("25%")

// Strategy is a Deployment strategy with its bounds resolved to pod counts.
type Strategy struct {
	// Recreate scales every old ReplicaSet to zero before the new one starts.
	Recreate bool
	// MaxSurge is how many pods may exist above spec.replicas.
	MaxSurge int32
	// MaxUnavailable is how many pods may be unavailable below spec.replicas.
	MaxUnavailable int32
}

// ResolveStrategy turns a Deployment spec's strategy into pod counts, with
// upstream's defaults (RollingUpdate, 25%/25%) and rounding (see
// ResolveFenceposts).
func ResolveStrategy(spec appsv1.DeploymentSpec) (Strategy, error) {
	if spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return Strategy{Recreate: true}, nil
	}
	surge, unavailable := defaultMaxSurgeAndUnavailable, defaultMaxSurgeAndUnavailable
	if ru := spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
	}
	replicas := int32(1)
	if spec.Replicas != nil {
		replicas = *spec.Replicas
	}
	s, u, err := ResolveFenceposts(&surge, &unavailable, replicas)
	if err != nil {
		return Strategy{}, err
	}
	return Strategy{MaxSurge: s, MaxUnavailable: u}, nil
}

// ResolveFenceposts resolves maxSurge and maxUnavailable against replicas.
// A surge percentage rounds up and an unavailable percentage rounds down, so
// that a rollout errs on the side of keeping pods available. If both come out
// as zero, maxUnavailable becomes 1: otherwise the rollout could never start
// (the API already refuses literal 0/0, but 1%/1% of 10 replicas is 0/0 too).
func ResolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, replicas int32) (int32, int32, error) {
	surge, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, intstr.FromInt32(0)), int(replicas), true)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, intstr.FromInt32(0)), int(replicas), false)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

// ReplicaSetState is what the planner needs to know about one ReplicaSet.
type ReplicaSetState struct {
	Name string
	// Replicas is spec.replicas.
	Replicas int32
	// Pods is status.replicas: the pods that still exist, possibly more than
	// Replicas while a scale-down is under way. Recreate waits for zero.
	Pods int32
	// Available is status.availableReplicas.
	Available int32
	// DesiredReplicas and MaxReplicas are the annotations of the same names;
	// nil when absent.
	DesiredReplicas *int32
	MaxReplicas     *int32
}

// RolloutState is the observed state the planner decides from.
type RolloutState struct {
	// Replicas is the Deployment's spec.replicas.
	Replicas int32
	// StatusReplicas is the Deployment's status.replicas, the fallback size
	// for proportional scaling of a ReplicaSet without a max-replicas
	// annotation.
	StatusReplicas int32
	Strategy       Strategy
	// New is the ReplicaSet for the current template. The controller creates
	// it (with zero replicas) before planning.
	New ReplicaSetState
	// Old are the other ReplicaSets, oldest first.
	Old []ReplicaSetState
}

// ScaleAction sets one ReplicaSet's spec.replicas, and its desired/max
// replicas annotations to the Deployment's current values.
type ScaleAction struct {
	Name            string
	Replicas        int32
	DesiredReplicas int32
	MaxReplicas     int32
}

// Plan is what one reconcile pass does. An empty plan means there is nothing
// to do until pods change (or the rollout is complete).
type Plan struct {
	// Reason names the phase that produced the actions, for logs and Events.
	Reason  string
	Actions []ScaleAction
}

// Reasons a plan gives.
const (
	ReasonScaling        = "ProportionalScaling"
	ReasonScaleUpNew     = "ScaleUpNew"
	ReasonScaleDownNew   = "ScaleDownNew"
	ReasonCleanupOld     = "CleanupUnhealthyOld"
	ReasonScaleDownOld   = "ScaleDownOld"
	ReasonWaitOldPods    = "WaitForOldPods"
	ReasonNothingToDo    = ""
	reasonCleanupAndDown = ReasonCleanupOld + "+" + ReasonScaleDownOld
)

// PlanRollout decides the next step of a rollout, as upstream's deployment
// controller does in one sync: a scaling event first scales every active
// ReplicaSet in proportion; otherwise Recreate or RollingUpdate takes one step.
func PlanRollout(s RolloutState) Plan {
	if isScalingEvent(s) {
		return planProportionalScale(s)
	}
	if s.Strategy.Recreate {
		return planRecreate(s)
	}
	return planRollingUpdate(s)
}

// all returns the new ReplicaSet followed by the old ones.
func (s RolloutState) all() []ReplicaSetState {
	return append([]ReplicaSetState{s.New}, s.Old...)
}

func (s RolloutState) scaleTo(name string, replicas int32) ScaleAction {
	return ScaleAction{Name: name, Replicas: replicas, DesiredReplicas: s.Replicas, MaxReplicas: s.Replicas + s.Strategy.MaxSurge}
}

func sumReplicas(rss []ReplicaSetState) int32 {
	var n int32
	for _, rs := range rss {
		n += rs.Replicas
	}
	return n
}

func sumAvailable(rss []ReplicaSetState) int32 {
	var n int32
	for _, rs := range rss {
		n += rs.Available
	}
	return n
}

// isScalingEvent reports whether spec.replicas changed since an active
// ReplicaSet was last scaled: its desired-replicas annotation disagrees.
func isScalingEvent(s RolloutState) bool {
	for _, rs := range s.all() {
		if rs.Replicas > 0 && rs.DesiredReplicas != nil && *rs.DesiredReplicas != s.Replicas {
			return true
		}
	}
	return false
}

// planProportionalScale spreads a change of spec.replicas over the active
// ReplicaSets in proportion to their size, so that a rollout in progress
// keeps its shape. The largest ReplicaSet takes the rounding leftovers (the
// newest on a tie when growing, the oldest when shrinking). As upstream,
// every active ReplicaSet gets its annotations refreshed even when its size
// does not change, so the scaling event is over after one pass.
func planProportionalScale(s RolloutState) Plan {
	plan := Plan{Reason: ReasonScaling}
	all := s.all()
	var active []int
	for i, rs := range all {
		if rs.Replicas > 0 {
			active = append(active, i)
		}
	}
	// One active ReplicaSet (or none: the newest) simply takes spec.replicas.
	if len(active) <= 1 {
		target := 0
		if len(active) == 1 {
			target = active[0]
		}
		plan.Actions = append(plan.Actions, s.scaleTo(all[target].Name, s.Replicas))
		return plan
	}
	// A saturated new ReplicaSet means the rollout is done: old ones go.
	if s.New.Replicas == s.Replicas && s.New.Available == s.Replicas && s.New.DesiredReplicas != nil && *s.New.DesiredReplicas == s.Replicas {
		for _, i := range active[1:] {
			plan.Actions = append(plan.Actions, s.scaleTo(all[i].Name, 0))
		}
		return plan
	}

	allowed := s.Replicas + s.Strategy.MaxSurge
	if s.Replicas == 0 {
		allowed = 0
	}
	toAdd := allowed - sumReplicas(all)

	// Order by size, largest first; all[0] is the newest, higher index older.
	order := append([]int(nil), active...)
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := all[order[a]], all[order[b]]
		if ra.Replicas != rb.Replicas {
			return ra.Replicas > rb.Replicas
		}
		if toAdd > 0 {
			return order[a] < order[b] // newer first
		}
		return order[a] > order[b] // older first
	})

	sizes := make(map[int]int32, len(order))
	var added int32
	for _, i := range order {
		p := proportion(s, all[i], toAdd, added)
		sizes[i] = all[i].Replicas + p
		added += p
	}
	if len(order) > 0 && toAdd != 0 {
		first := order[0]
		sizes[first] += toAdd - added
		if sizes[first] < 0 {
			sizes[first] = 0
		}
	}
	for _, i := range active {
		plan.Actions = append(plan.Actions, s.scaleTo(all[i].Name, sizes[i]))
	}
	return plan
}

// proportion is how many replicas rs gains (or loses, negative) out of toAdd,
// given that added have been handed out already.
func proportion(s RolloutState, rs ReplicaSetState, toAdd, added int32) int32 {
	if rs.Replicas == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := fraction(s, rs)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

// fraction scales rs by the ratio of the new maximum size to the one it was
// last scaled for (its max-replicas annotation).
func fraction(s RolloutState, rs ReplicaSetState) int32 {
	if s.Replicas == 0 {
		return -rs.Replicas
	}
	target := s.Replicas + s.Strategy.MaxSurge
	// Without the annotation (or with 0, after a scale to zero), the
	// Deployment's current size stands in, as upstream.
	was := s.StatusReplicas
	if rs.MaxReplicas != nil && *rs.MaxReplicas != 0 {
		was = *rs.MaxReplicas
	}
	if was == 0 {
		return 0
	}
	size := float64(rs.Replicas) * float64(target) / float64(was)
	return int32(math.Round(size)) - rs.Replicas
}

// planRecreate scales every old ReplicaSet to zero, waits until their pods
// are gone, then scales the new one up.
func planRecreate(s RolloutState) Plan {
	plan := Plan{Reason: ReasonScaleDownOld}
	for _, rs := range s.Old {
		if rs.Replicas > 0 {
			plan.Actions = append(plan.Actions, s.scaleTo(rs.Name, 0))
		}
	}
	if len(plan.Actions) > 0 {
		return plan
	}
	for _, rs := range s.Old {
		if rs.Pods > 0 {
			return Plan{Reason: ReasonWaitOldPods}
		}
	}
	if s.New.Replicas != s.Replicas {
		return Plan{Reason: ReasonScaleUpNew, Actions: []ScaleAction{s.scaleTo(s.New.Name, s.Replicas)}}
	}
	return Plan{}
}

// planRollingUpdate takes one rolling step: grow the new ReplicaSet within
// maxSurge; if it cannot grow, shrink the old ones within maxUnavailable,
// unhealthy pods first.
func planRollingUpdate(s RolloutState) Plan {
	if n, ok := newReplicaSetTarget(s); ok {
		reason := ReasonScaleUpNew
		if n < s.New.Replicas {
			reason = ReasonScaleDownNew
		}
		return Plan{Reason: reason, Actions: []ScaleAction{s.scaleTo(s.New.Name, n)}}
	}
	return planScaleDownOld(s)
}

// newReplicaSetTarget is the new ReplicaSet's size for this step, and false
// when it stays as it is.
func newReplicaSetTarget(s RolloutState) (int32, bool) {
	switch {
	case s.New.Replicas == s.Replicas:
		return 0, false
	case s.New.Replicas > s.Replicas:
		return s.Replicas, true
	}
	maxTotal := s.Replicas + s.Strategy.MaxSurge
	current := sumReplicas(s.all())
	if current >= maxTotal {
		return 0, false
	}
	up := min(maxTotal-current, s.Replicas-s.New.Replicas)
	return s.New.Replicas + up, true
}

// planScaleDownOld shrinks old ReplicaSets without going below
// spec.replicas - maxUnavailable available pods. Pods that are not available
// cost nothing to remove, so those go first (oldest ReplicaSet first); then
// available old pods, as far as the available count allows.
func planScaleDownOld(s RolloutState) Plan {
	if sumReplicas(s.Old) == 0 {
		return Plan{}
	}
	minAvailable := s.Replicas - s.Strategy.MaxUnavailable
	newUnavailable := s.New.Replicas - s.New.Available
	maxScaledDown := sumReplicas(s.all()) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return Plan{}
	}

	old := append([]ReplicaSetState(nil), s.Old...)
	sizes := make([]int32, len(old))
	for i, rs := range old {
		sizes[i] = rs.Replicas
	}

	// 1. Unhealthy old pods.
	var cleaned int32
	for i, rs := range old {
		if cleaned >= maxScaledDown {
			break
		}
		unhealthy := rs.Replicas - rs.Available
		if rs.Replicas == 0 || unhealthy <= 0 {
			continue
		}
		n := min(maxScaledDown-cleaned, unhealthy)
		sizes[i] -= n
		cleaned += n
	}

	// 2. Available old pods, down to minAvailable.
	var downed int32
	if excess := sumAvailable(s.all()) - minAvailable; excess > 0 {
		for i := range old {
			if downed >= excess {
				break
			}
			if sizes[i] == 0 {
				continue
			}
			n := min(sizes[i], excess-downed)
			sizes[i] -= n
			downed += n
		}
	}

	plan := Plan{}
	for i, rs := range old {
		if sizes[i] != rs.Replicas {
			plan.Actions = append(plan.Actions, s.scaleTo(rs.Name, sizes[i]))
		}
	}
	switch {
	case cleaned > 0 && downed > 0:
		plan.Reason = reasonCleanupAndDown
	case cleaned > 0:
		plan.Reason = ReasonCleanupOld
	case downed > 0:
		plan.Reason = ReasonScaleDownOld
	}
	return plan
}
