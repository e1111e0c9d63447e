package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// spreadConstraint is a parsed TopologySpreadConstraint.
type spreadConstraint struct {
	maxSkew     int64
	topologyKey string
	selector    labels.Selector
	minDomains  int
	// selfMatch is whether the incoming pod counts for its own constraint.
	selfMatch bool
}

// parseSpread splits the pod's constraints into DoNotSchedule (filter)
// and ScheduleAnyway (score). matchLabelKeys and the node inclusion
// policies are not supported: nodes count when they match the pod's node
// affinity, taints are ignored, as upstream's defaults.
func parseSpread(pi *PodInfo) {
	for _, c := range pi.Pod.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil || c.LabelSelector == nil {
			sel = labels.Nothing()
		}
		sc := spreadConstraint{maxSkew: int64(c.MaxSkew), topologyKey: c.TopologyKey, selector: sel}
		sc.selfMatch = sel.Matches(labels.Set(pi.Pod.Labels))
		if c.MinDomains != nil {
			sc.minDomains = int(*c.MinDomains)
		}
		if c.WhenUnsatisfiable == corev1.ScheduleAnyway {
			pi.softSpread = append(pi.softSpread, sc)
		} else {
			pi.hardSpread = append(pi.hardSpread, sc)
		}
	}
}

// spreadState counts, per constraint and per domain, the pods in the
// incoming pod's namespace that the constraint selects, over the nodes
// that match the pod's node affinity and carry every topology key.
type spreadState struct {
	constraints []spreadConstraint
	counts      []map[string]int
	// minMatch is, per constraint, the smallest count over the domains (0
	// while there are fewer domains than minDomains).
	minMatch []int
}

func newSpreadState(pod *PodInfo, constraints []spreadConstraint, nodes []*NodeInfo) *spreadState {
	if len(constraints) == 0 {
		return nil
	}
	s := &spreadState{constraints: constraints, counts: make([]map[string]int, len(constraints)), minMatch: make([]int, len(constraints))}
	for i := range s.counts {
		s.counts[i] = map[string]int{}
	}
	for _, n := range nodes {
		if !s.eligible(pod, n) {
			continue
		}
		for i, c := range constraints {
			v := n.Node.Labels[c.topologyKey]
			s.counts[i][v] += 0 // the domain exists even with no pods
			for _, p := range n.pods {
				if spreadMatches(pod, &c, p) {
					s.counts[i][v]++
				}
			}
		}
	}
	for i := range constraints {
		s.updateMin(i)
	}
	return s
}

// counts_ reports whether node n takes part in the spreading of pod.
func (s *spreadState) eligible(pod *PodInfo, n *NodeInfo) bool {
	for _, c := range s.constraints {
		if _, ok := n.Node.Labels[c.topologyKey]; !ok {
			return false
		}
	}
	ok, _ := pod.nodeAffinity.Match(n.Node)
	return ok
}

func spreadMatches(pod *PodInfo, c *spreadConstraint, p *PodInfo) bool {
	return p.Pod.Namespace == pod.Pod.Namespace && p.Pod.DeletionTimestamp == nil &&
		c.selector.Matches(labels.Set(p.Pod.Labels))
}

func (s *spreadState) updateMin(i int) {
	m := math.MaxInt
	for _, v := range s.counts[i] {
		m = min(m, v)
	}
	if m == math.MaxInt || len(s.counts[i]) < s.constraints[i].minDomains {
		m = 0
	}
	s.minMatch[i] = m
}

// update adds (sign 1) or removes (sign -1) existing pod p on node n.
func (s *spreadState) update(pod, p *PodInfo, n *NodeInfo, sign int) {
	if s == nil || !s.eligible(pod, n) {
		return
	}
	for i := range s.constraints {
		if spreadMatches(pod, &s.constraints[i], p) {
			s.counts[i][n.Node.Labels[s.constraints[i].topologyKey]] += sign
			s.updateMin(i)
		}
	}
}

func (s *spreadState) clone() *spreadState {
	if s == nil {
		return nil
	}
	c := &spreadState{constraints: s.constraints, minMatch: append([]int(nil), s.minMatch...)}
	for _, m := range s.counts {
		c.counts = append(c.counts, cloneCounts(m))
	}
	return c
}

// topologySpread enforces DoNotSchedule constraints: placing the pod on the
// node must keep each domain within maxSkew of the emptiest domain. It
// scores ScheduleAnyway constraints: fewer matching pods is better.
type topologySpread struct{}

func (topologySpread) Name() string { return "PodTopologySpread" }

const (
	spreadReason      = "node(s) didn't match pod topology spread constraints"
	spreadLabelReason = "node(s) didn't match pod topology spread constraints (missing required label)"
)

func (topologySpread) Filter(s *cycleState, n *NodeInfo) *Status {
	st := s.spread
	if st == nil {
		return nil
	}
	for i, c := range st.constraints {
		v, ok := n.Node.Labels[c.topologyKey]
		if !ok {
			return unresolvable(spreadLabelReason)
		}
		self := 0
		if c.selfMatch {
			self = 1
		}
		if int64(st.counts[i][v]+self-st.minMatch[i]) > c.maxSkew {
			return resolvable(spreadReason)
		}
	}
	return nil
}

func (topologySpread) Weight() int64 { return 2 }

func (topologySpread) Active(s *cycleState) bool { return s.softSpread != nil }

// Score is the number of matching pods in the node's domains; nodes that
// lack a topology key get the worst score.
func (topologySpread) Score(s *cycleState, n *NodeInfo) int64 {
	st := s.softSpread
	var score int64
	for i, c := range st.constraints {
		v, ok := n.Node.Labels[c.topologyKey]
		if !ok {
			return math.MaxInt32
		}
		score += int64(st.counts[i][v])
	}
	return score
}

func (topologySpread) Normalize(_ *cycleState, scores []int64) { normalizeMinMax(scores, true) }
