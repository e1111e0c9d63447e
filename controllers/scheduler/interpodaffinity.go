package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// affinityTerm is a parsed PodAffinityTerm.
type affinityTerm struct {
	selector    labels.Selector
	namespaces  map[string]struct{}
	allSpaces   bool
	topologyKey string
}

// weightedTerm is a parsed WeightedPodAffinityTerm.
type weightedTerm struct {
	affinityTerm
	weight int64
}

// topologyPair is one topology domain: a node label and its value.
type topologyPair struct{ key, value string }

// newAffinityTerm parses a term of a pod in namespace ns. A term with no
// namespaces and no namespaceSelector means the pod's own namespace; an
// empty namespaceSelector means every namespace. A non-empty
// namespaceSelector would need Namespace objects, which the scheduler does
// not watch: it adds no namespace.
func newAffinityTerm(ns string, t *corev1.PodAffinityTerm) affinityTerm {
	at := affinityTerm{topologyKey: t.TopologyKey, namespaces: map[string]struct{}{}}
	sel, err := metav1.LabelSelectorAsSelector(t.LabelSelector)
	if err != nil || t.LabelSelector == nil {
		sel = labels.Nothing()
	}
	at.selector = sel
	for _, n := range t.Namespaces {
		at.namespaces[n] = struct{}{}
	}
	switch {
	case t.NamespaceSelector != nil && len(t.NamespaceSelector.MatchLabels) == 0 && len(t.NamespaceSelector.MatchExpressions) == 0:
		at.allSpaces = true
	case len(t.Namespaces) == 0 && t.NamespaceSelector == nil:
		at.namespaces[ns] = struct{}{}
	}
	return at
}

// matches reports whether the term selects pod p.
func (t *affinityTerm) matches(p *PodInfo) bool {
	if !t.allSpaces {
		if _, ok := t.namespaces[p.Pod.Namespace]; !ok {
			return false
		}
	}
	return t.selector.Matches(labels.Set(p.Pod.Labels))
}

// parsePodAffinity fills the pod's parsed affinity terms.
func parsePodAffinity(pi *PodInfo, a *corev1.Affinity) {
	ns := pi.Pod.Namespace
	if pa := a.PodAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			pi.requiredAffinity = append(pi.requiredAffinity, newAffinityTerm(ns, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i]))
		}
		for _, w := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			pi.preferredAffinity = append(pi.preferredAffinity, weightedTerm{newAffinityTerm(ns, &w.PodAffinityTerm), int64(w.Weight)})
		}
	}
	if pa := a.PodAntiAffinity; pa != nil {
		for i := range pa.RequiredDuringSchedulingIgnoredDuringExecution {
			pi.requiredAntiAffinity = append(pi.requiredAntiAffinity, newAffinityTerm(ns, &pa.RequiredDuringSchedulingIgnoredDuringExecution[i]))
		}
		for _, w := range pa.PreferredDuringSchedulingIgnoredDuringExecution {
			pi.preferredAntiAffinity = append(pi.preferredAntiAffinity, weightedTerm{newAffinityTerm(ns, &w.PodAffinityTerm), int64(w.Weight)})
		}
	}
}

// affinityState counts, per topology domain, the pods that the incoming
// pod's required terms and the existing pods' anti-affinity care about.
type affinityState struct {
	// existingAnti counts existing pods whose required anti-affinity
	// selects the incoming pod.
	existingAnti map[topologyPair]int
	// affinity counts, per term of the incoming pod, pods matching all its
	// required affinity terms.
	affinity []map[topologyPair]int
	// anti counts, per term, pods matching the incoming pod's required
	// anti-affinity.
	anti []map[topologyPair]int
	// matchedAny is how many pods match all the affinity terms anywhere.
	matchedAny int
}

// newAffinityState computes the counts over every node, or returns nil when
// neither the pod nor any existing pod has required (anti-)affinity.
func newAffinityState(pod *PodInfo, nodes []*NodeInfo) *affinityState {
	own := len(pod.requiredAffinity) > 0 || len(pod.requiredAntiAffinity) > 0
	s := &affinityState{existingAnti: map[topologyPair]int{}}
	for range pod.requiredAffinity {
		s.affinity = append(s.affinity, map[topologyPair]int{})
	}
	for range pod.requiredAntiAffinity {
		s.anti = append(s.anti, map[topologyPair]int{})
	}
	relevant := own
	for _, n := range nodes {
		if !own && n.podsWithRequiredAntiAffinity == 0 {
			continue
		}
		for _, p := range n.pods {
			s.update(pod, p, n, 1)
			relevant = true
		}
	}
	if !relevant {
		return nil
	}
	return s
}

// update adds (sign 1) or removes (sign -1) existing pod p on node n.
func (s *affinityState) update(pod, p *PodInfo, n *NodeInfo, sign int) {
	nodeLabels := n.Node.Labels
	for i := range p.requiredAntiAffinity {
		t := &p.requiredAntiAffinity[i]
		if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(pod) {
			s.existingAnti[topologyPair{t.topologyKey, v}] += sign
		}
	}
	if len(pod.requiredAffinity) > 0 && matchesAll(pod.requiredAffinity, p) {
		s.matchedAny += sign
		for i, t := range pod.requiredAffinity {
			if v, ok := nodeLabels[t.topologyKey]; ok {
				s.affinity[i][topologyPair{t.topologyKey, v}] += sign
			}
		}
	}
	for i := range pod.requiredAntiAffinity {
		t := &pod.requiredAntiAffinity[i]
		if v, ok := nodeLabels[t.topologyKey]; ok && t.matches(p) {
			s.anti[i][topologyPair{t.topologyKey, v}] += sign
		}
	}
}

func matchesAll(terms []affinityTerm, p *PodInfo) bool {
	for i := range terms {
		if !terms[i].matches(p) {
			return false
		}
	}
	return true
}

// clone copies the counts, for preemption's what-if runs.
func (s *affinityState) clone() *affinityState {
	if s == nil {
		return nil
	}
	c := &affinityState{existingAnti: cloneCounts(s.existingAnti), matchedAny: s.matchedAny}
	for _, m := range s.affinity {
		c.affinity = append(c.affinity, cloneCounts(m))
	}
	for _, m := range s.anti {
		c.anti = append(c.anti, cloneCounts(m))
	}
	return c
}

func cloneCounts[K comparable](m map[K]int) map[K]int {
	c := make(map[K]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// interPodAffinity enforces required pod affinity and anti-affinity, both
// the incoming pod's and the existing pods' anti-affinity against it, and
// scores the incoming pod's preferred terms.
type interPodAffinity struct{}

func (interPodAffinity) Name() string { return "InterPodAffinity" }

const (
	affinityReason             = "node(s) didn't match pod affinity rules"
	antiAffinityReason         = "node(s) didn't match pod anti-affinity rules"
	existingAntiAffinityReason = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// Filter checks, in upstream's order, the pod's affinity, its
// anti-affinity, then the existing pods' anti-affinity against it.
func (interPodAffinity) Filter(s *cycleState, n *NodeInfo) *Status {
	st := s.affinity
	if st == nil {
		return nil
	}
	nodeLabels := n.Node.Labels
	for i := range s.pod.requiredAffinity {
		key := s.pod.requiredAffinity[i].topologyKey
		v, ok := nodeLabels[key]
		if !ok {
			return unresolvable(affinityReason)
		}
		if st.affinity[i][topologyPair{key, v}] > 0 {
			continue
		}
		// The first pod of a group that selects itself may go anywhere
		// with the topology label; otherwise no pod would ever start.
		if st.matchedAny == 0 && matchesAll(s.pod.requiredAffinity, s.pod) {
			continue
		}
		return unresolvable(affinityReason)
	}
	for i := range s.pod.requiredAntiAffinity {
		key := s.pod.requiredAntiAffinity[i].topologyKey
		if v, ok := nodeLabels[key]; ok && st.anti[i][topologyPair{key, v}] > 0 {
			return resolvable(antiAffinityReason)
		}
	}
	for pair, count := range st.existingAnti {
		if v, ok := nodeLabels[pair.key]; ok && v == pair.value && count > 0 {
			return resolvable(existingAntiAffinityReason)
		}
	}
	return nil
}

func (interPodAffinity) Weight() int64 { return 2 }

func (interPodAffinity) Active(s *cycleState) bool { return s.preferredPairs != nil }

// Score sums the weights of the preferred terms whose matching pods share
// a topology domain with the node (anti-affinity weights count negative).
func (interPodAffinity) Score(s *cycleState, n *NodeInfo) int64 {
	var score int64
	for pair, w := range s.preferredPairs {
		if v, ok := n.Node.Labels[pair.key]; ok && v == pair.value {
			score += w
		}
	}
	return score
}

func (interPodAffinity) Normalize(_ *cycleState, scores []int64) { normalizeMinMax(scores, false) }

// preferredAffinityPairs sums, per topology domain, the weights of the
// incoming pod's preferred terms that existing pods there match.
func preferredAffinityPairs(pod *PodInfo, nodes []*NodeInfo) map[topologyPair]int64 {
	if len(pod.preferredAffinity) == 0 && len(pod.preferredAntiAffinity) == 0 {
		return nil
	}
	pairs := map[topologyPair]int64{}
	add := func(terms []weightedTerm, sign int64, p *PodInfo, n *NodeInfo) {
		for i := range terms {
			t := &terms[i]
			if v, ok := n.Node.Labels[t.topologyKey]; ok && t.matches(p) {
				pairs[topologyPair{t.topologyKey, v}] += sign * t.weight
			}
		}
	}
	for _, n := range nodes {
		for _, p := range n.pods {
			add(pod.preferredAffinity, 1, p, n)
			add(pod.preferredAntiAffinity, -1, p, n)
		}
	}
	return pairs
}
