package scheduler

// nodeAffinity refuses nodes that do not match the pod's nodeSelector and
// required node affinity, and scores nodes by its preferred terms.
type nodeAffinity struct{}

func (nodeAffinity) Name() string { return "NodeAffinity" }

const nodeAffinityReason = "node(s) didn't match Pod's node affinity/selector"

func (nodeAffinity) Filter(s *cycleState, n *NodeInfo) *Status {
	// An error means a term the apiserver should have refused; the term
	// then matches nothing, as upstream.
	if ok, _ := s.pod.nodeAffinity.Match(n.Node); !ok {
		return unresolvable(nodeAffinityReason)
	}
	return nil
}

func (nodeAffinity) Weight() int64 { return 2 }

func (nodeAffinity) Active(s *cycleState) bool { return s.pod.preferredNodes != nil }

// Score is the sum of the weights of the preferred terms the node matches.
func (nodeAffinity) Score(s *cycleState, n *NodeInfo) int64 {
	return s.pod.preferredNodes.Score(n.Node)
}

// Normalize scales the scores so that the best node gets maxNodeScore.
func (nodeAffinity) Normalize(_ *cycleState, scores []int64) { normalizeByMax(scores, false) }

// normalizeByMax maps scores onto 0..maxNodeScore relative to the highest
// one; reverse makes the lowest raw score the best.
func normalizeByMax(scores []int64, reverse bool) {
	var highest int64
	for _, v := range scores {
		highest = max(highest, v)
	}
	for i, v := range scores {
		switch {
		case highest == 0 && reverse:
			scores[i] = maxNodeScore
		case highest == 0:
			scores[i] = 0
		case reverse:
			scores[i] = maxNodeScore - v*maxNodeScore/highest
		default:
			scores[i] = v * maxNodeScore / highest
		}
	}
}

// normalizeMinMax maps scores onto 0..maxNodeScore between the lowest and
// highest; reverse makes the lowest raw score the best.
func normalizeMinMax(scores []int64, reverse bool) {
	if len(scores) == 0 {
		return
	}
	lo, hi := scores[0], scores[0]
	for _, v := range scores {
		lo, hi = min(lo, v), max(hi, v)
	}
	for i, v := range scores {
		switch {
		case hi == lo:
			scores[i] = maxNodeScore
		case reverse:
			scores[i] = (hi - v) * maxNodeScore / (hi - lo)
		default:
			scores[i] = (v - lo) * maxNodeScore / (hi - lo)
		}
	}
}
