package scheduler

// Scoring strategies, the values of Config.Scoring.
const (
	LeastAllocated = "LeastAllocated"
	MostAllocated  = "MostAllocated"
)

// allocated scores nodes by how much of their cpu and memory would be
// requested with the pod on them: LeastAllocated prefers the emptiest
// nodes (spreading), MostAllocated the fullest (bin packing). Requests
// count with upstream's defaults for containers that ask for nothing.
type allocated struct {
	most bool
}

func (a allocated) Name() string {
	if a.most {
		return MostAllocated
	}
	return LeastAllocated
}

func (allocated) Weight() int64 { return 1 }

func (allocated) Active(*cycleState) bool { return true }

func (a allocated) Score(s *cycleState, n *NodeInfo) int64 {
	cpu := a.fraction(n.nonZeroCPU+s.pod.nonZeroCPU, n.allocatable.milliCPU)
	mem := a.fraction(n.nonZeroMem+s.pod.nonZeroMemory, n.allocatable.memory)
	return (cpu + mem) / 2
}

// fraction scores one resource on 0..maxNodeScore.
func (a allocated) fraction(requested, capacity int64) int64 {
	if capacity <= 0 {
		return 0
	}
	if requested > capacity {
		if a.most {
			return maxNodeScore
		}
		return 0
	}
	if a.most {
		return requested * maxNodeScore / capacity
	}
	return (capacity - requested) * maxNodeScore / capacity
}

// Normalize does nothing: the scores are already on 0..maxNodeScore.
func (allocated) Normalize(*cycleState, []int64) {}
