package scheduler

import (
	"math/rand/v2"
)

// cycleState is what one scheduling cycle knows about the pod it places,
// computed once before the nodes are visited.
type cycleState struct {
	pod        *PodInfo
	affinity   *affinityState
	spread     *spreadState
	softSpread *spreadState
	// preferredPairs is the preferred inter-pod affinity per domain.
	preferredPairs map[topologyPair]int64
	// nominated are, per node, the pods of equal or higher priority that
	// preemption has promised that node: they count as if already there.
	nominated map[string][]*PodInfo
}

// newCycleState runs the cluster-wide counting that some filters and
// scores need. nominated lists every nominated pod by node.
func newCycleState(pod *PodInfo, nodes []*NodeInfo, nominated map[string][]*PodInfo) *cycleState {
	s := &cycleState{pod: pod}
	s.affinity = newAffinityState(pod, nodes)
	s.spread = newSpreadState(pod, pod.hardSpread, nodes)
	s.softSpread = newSpreadState(pod, pod.softSpread, nodes)
	s.preferredPairs = preferredAffinityPairs(pod, nodes)
	for node, pods := range nominated {
		for _, p := range pods {
			if p.Pod.UID != pod.Pod.UID && p.Priority >= pod.Priority {
				if s.nominated == nil {
					s.nominated = map[string][]*PodInfo{}
				}
				s.nominated[node] = append(s.nominated[node], p)
			}
		}
	}
	return s
}

// removePod updates the counts as if existing pod p left node n.
func (s *cycleState) removePod(p *PodInfo, n *NodeInfo) {
	if s.affinity != nil {
		s.affinity.update(s.pod, p, n, -1)
	}
	s.spread.update(s.pod, p, n, -1)
}

// addPod updates the counts as if pod p joined node n.
func (s *cycleState) addPod(p *PodInfo, n *NodeInfo) {
	if s.affinity != nil {
		s.affinity.update(s.pod, p, n, 1)
	}
	s.spread.update(s.pod, p, n, 1)
}

// clone copies the counts, for preemption's what-if runs on one node.
func (s *cycleState) clone() *cycleState {
	c := *s
	c.affinity = s.affinity.clone()
	c.spread = s.spread.clone()
	return &c
}

// algorithm is the pure scheduling core: filters, scores and the rotating
// start index. It is not safe for concurrent use: the scheduler runs one
// cycle at a time.
type algorithm struct {
	filters    []filterPlugin
	scorers    []scorePlugin
	percentage int32
	nextStart  int

	// buffers reused across cycles to keep the cycle allocation-light
	feasible []*NodeInfo
	raw      []int64
	total    []int64
}

// newAlgorithm builds the core with skiff's plugins, in upstream's order.
func newAlgorithm(cfg Config) *algorithm {
	return &algorithm{
		filters: []filterPlugin{
			nodeReady{}, taintToleration{}, nodeAffinity{}, hostPorts{}, resourceFit{},
			volumeBinding{}, topologySpread{}, interPodAffinity{},
		},
		scorers: []scorePlugin{
			allocated{most: cfg.Scoring == MostAllocated}, nodeAffinity{}, interPodAffinity{}, topologySpread{},
		},
		percentage: cfg.PercentageOfNodesToScore,
	}
}

// FitError says why a pod fits on no node: each refusing node's status,
// and what preemption concluded.
type FitError struct {
	NumNodes int
	Statuses map[string]*Status
	// PostFilter is preemption's summary, "" when preemption did not run.
	PostFilter string
}

func (e *FitError) Error() string { return failureMessage(e) }

// schedule picks a node for the pod among nodes, or explains why none fits.
func (a *algorithm) schedule(s *cycleState, nodes []*NodeInfo) (*NodeInfo, *FitError) {
	if len(nodes) == 0 {
		return nil, &FitError{}
	}
	// A pod that preemption placed tries its promised node first, as
	// upstream: the victims are gone or going there.
	if name := s.pod.Pod.Status.NominatedNodeName; name != "" {
		for _, n := range nodes {
			if n.Name == name && a.filterNode(s, n) == nil {
				return n, nil
			}
		}
	}
	feasible, statuses := a.findFeasible(s, nodes)
	switch len(feasible) {
	case 0:
		return nil, &FitError{NumNodes: len(nodes), Statuses: statuses}
	case 1:
		return feasible[0], nil
	}
	return a.selectHost(s, feasible), nil
}

// numFeasibleNodesToFind is upstream's adaptive bound: every node in small
// clusters, otherwise a percentage that shrinks as the cluster grows
// (50% minus 1% per 125 nodes, at least 5%), and never fewer than 100.
func (a *algorithm) numFeasibleNodesToFind(all int) int {
	const minFeasible = 100
	if all < minFeasible || a.percentage >= 100 {
		return all
	}
	pct := int(a.percentage)
	if pct <= 0 {
		pct = max(5, 50-all/125)
	}
	return max(minFeasible, all*pct/100)
}

// findFeasible filters nodes from the rotating start until enough fit,
// and records why the others did not.
func (a *algorithm) findFeasible(s *cycleState, nodes []*NodeInfo) ([]*NodeInfo, map[string]*Status) {
	want := a.numFeasibleNodesToFind(len(nodes))
	a.feasible = a.feasible[:0]
	var statuses map[string]*Status
	start := a.nextStart % len(nodes)
	visited := 0
	for ; visited < len(nodes) && len(a.feasible) < want; visited++ {
		n := nodes[(start+visited)%len(nodes)]
		if st := a.filterNode(s, n); st != nil {
			if statuses == nil {
				statuses = map[string]*Status{}
			}
			statuses[n.Name] = st
			continue
		}
		a.feasible = append(a.feasible, n)
	}
	a.nextStart = (start + visited) % len(nodes)
	return a.feasible, statuses
}

// filterNode runs every filter on the node, with the pods nominated to it
// counted as present.
func (a *algorithm) filterNode(s *cycleState, n *NodeInfo) *Status {
	if nominated := s.nominated[n.Name]; len(nominated) > 0 {
		n = n.Clone()
		for _, p := range nominated {
			n.AddPod(p)
		}
	}
	for _, f := range a.filters {
		if st := f.Filter(s, n); st != nil {
			return st
		}
	}
	return nil
}

// selectHost scores the feasible nodes and returns the best, breaking
// ties at random so that equal nodes share the load.
func (a *algorithm) selectHost(s *cycleState, feasible []*NodeInfo) *NodeInfo {
	a.total = resize(a.total, len(feasible))
	a.raw = resize(a.raw, len(feasible))
	clear(a.total)
	for _, p := range a.scorers {
		if !p.Active(s) {
			continue
		}
		for i, n := range feasible {
			a.raw[i] = p.Score(s, n)
		}
		p.Normalize(s, a.raw)
		w := p.Weight()
		for i := range a.raw {
			a.total[i] += w * a.raw[i]
		}
	}
	best, ties := 0, 1
	for i := 1; i < len(feasible); i++ {
		switch {
		case a.total[i] > a.total[best]:
			best, ties = i, 1
		case a.total[i] == a.total[best]:
			ties++
			if rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return feasible[best]
}

func resize(b []int64, n int) []int64 {
	if cap(b) < n {
		return make([]int64, n)
	}
	return b[:n]
}
