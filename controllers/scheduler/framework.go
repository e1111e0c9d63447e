package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// Status is a filter's verdict on one node: nil means the pod fits. Reasons
// are the user-facing strings counted in the FailedScheduling message.
// Unresolvable marks failures that evicting pods cannot fix (a taint, a
// selector), so that preemption skips those nodes.
type Status struct {
	Reasons      []string
	Unresolvable bool
}

// unresolvable is a failure that preemption cannot fix.
func unresolvable(reason string) *Status {
	return &Status{Reasons: []string{reason}, Unresolvable: true}
}

// resolvable is a failure that removing pods from the node may fix.
func resolvable(reasons ...string) *Status {
	return &Status{Reasons: reasons}
}

// filterPlugin decides whether one node can run the pod. Filters run in
// order and the first failure wins, as upstream.
type filterPlugin interface {
	Name() string
	Filter(s *cycleState, n *NodeInfo) *Status
}

// scorePlugin rates a feasible node. Raw scores are normalized to
// 0..maxNodeScore across the feasible nodes and weighted.
type scorePlugin interface {
	Name() string
	// Active reports whether the plugin has anything to say for this pod,
	// so that the cycle skips plugins that would score every node alike.
	Active(s *cycleState) bool
	Score(s *cycleState, n *NodeInfo) int64
	// Normalize maps the raw scores onto 0..maxNodeScore in place.
	Normalize(s *cycleState, scores []int64)
	Weight() int64
}

const maxNodeScore = 100

// resources is the subset of a ResourceList the scheduler does arithmetic
// on, in integers so that the hot path never touches resource.Quantity.
type resources struct {
	milliCPU int64
	memory   int64
	storage  int64
	// scalar holds extended resources (nvidia.com/gpu, hugepages...), nil
	// for most pods.
	scalar map[corev1.ResourceName]int64
}

// newResources converts a ResourceList.
func newResources(rl corev1.ResourceList) resources {
	var r resources
	for name, q := range rl {
		switch name {
		case corev1.ResourceCPU:
			r.milliCPU = q.MilliValue()
		case corev1.ResourceMemory:
			r.memory = q.Value()
		case corev1.ResourceEphemeralStorage:
			r.storage = q.Value()
		case corev1.ResourcePods:
			// counted separately, as the number of pods on a node
		default:
			if r.scalar == nil {
				r.scalar = map[corev1.ResourceName]int64{}
			}
			r.scalar[name] = q.Value()
		}
	}
	return r
}

// add adds o to r (sign 1) or takes it away (sign -1).
func (r *resources) add(o *resources, sign int64) {
	r.milliCPU += sign * o.milliCPU
	r.memory += sign * o.memory
	r.storage += sign * o.storage
	for name, v := range o.scalar {
		if r.scalar == nil {
			r.scalar = map[corev1.ResourceName]int64{}
		}
		r.scalar[name] += sign * v
	}
}

// clone returns a copy that does not share the scalar map.
func (r resources) clone() resources {
	if r.scalar != nil {
		m := make(map[corev1.ResourceName]int64, len(r.scalar))
		for k, v := range r.scalar {
			m[k] = v
		}
		r.scalar = m
	}
	return r
}

// Upstream's defaults for a container that requests nothing, used only when
// scoring so that many request-less pods still spread out.
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 * 1024 * 1024
)

// hostPort is one port a pod takes on its node's addresses.
type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

// PodInfo is everything the scheduler needs to know about a pod, computed
// once when the pod is seen rather than in every cycle: its requests,
// ports, resolved priority and parsed affinity.
type PodInfo struct {
	Pod      *skiffcorev1.Pod
	Priority int32
	// PreemptNever is preemptionPolicy Never, from the pod or its class.
	PreemptNever bool

	requests resources
	// nonZeroCPU and nonZeroMemory are the requests with upstream's
	// defaults for containers that ask for nothing, for scoring.
	nonZeroCPU, nonZeroMemory int64
	ports                     []hostPort

	nodeAffinity   nodeaffinity.RequiredNodeAffinity
	preferredNodes *nodeaffinity.PreferredSchedulingTerms

	requiredAffinity      []affinityTerm
	requiredAntiAffinity  []affinityTerm
	preferredAffinity     []weightedTerm
	preferredAntiAffinity []weightedTerm

	hardSpread []spreadConstraint
	softSpread []spreadConstraint

	// volumeNodeAffinity holds the node affinity of the pod's bound
	// PersistentVolumes.
	volumeNodeAffinity []nodeaffinity.RequiredNodeAffinity
}

// Key is the pod's namespace/name.
func (p *PodInfo) Key() string { return p.Pod.Namespace + "/" + p.Pod.Name }

// NewPodInfo precomputes a pod's scheduling facts. priority and never are
// the pod's resolved priority and preemption policy.
func NewPodInfo(pod *skiffcorev1.Pod, priority int32, never bool) *PodInfo {
	pi := &PodInfo{Pod: pod, Priority: priority, PreemptNever: never}
	pi.requests = newResources(podutil.Requests(pod))
	pi.nonZeroCPU, pi.nonZeroMemory = nonZeroRequests(pod)
	for i := range pod.Spec.Containers {
		for _, p := range pod.Spec.Containers[i].Ports {
			if p.HostPort > 0 {
				pi.ports = append(pi.ports, newHostPort(p))
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		for _, p := range pod.Spec.InitContainers[i].Ports {
			if p.HostPort > 0 {
				pi.ports = append(pi.ports, newHostPort(p))
			}
		}
	}
	pi.nodeAffinity = nodeaffinity.NewRequiredNodeAffinity(pod.Spec.NodeSelector, pod.Spec.Affinity)
	if a := pod.Spec.Affinity; a != nil {
		if a.NodeAffinity != nil && len(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
			// An invalid term fails the whole set; the apiserver's
			// validation makes that rare, and the pod then just gets no
			// preference.
			pi.preferredNodes, _ = nodeaffinity.NewPreferredSchedulingTerms(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
		}
		parsePodAffinity(pi, a)
	}
	parseSpread(pi)
	return pi
}

// newHostPort normalizes a container port as upstream does: an empty IP is
// every address, an empty protocol is TCP.
func newHostPort(p corev1.ContainerPort) hostPort {
	hp := hostPort{ip: p.HostIP, protocol: p.Protocol, port: p.HostPort}
	if hp.ip == "" {
		hp.ip = "0.0.0.0"
	}
	if hp.protocol == "" {
		hp.protocol = corev1.ProtocolTCP
	}
	return hp
}

// nonZeroRequests sums the app containers' cpu and memory requests, with
// upstream's defaults standing in for missing ones.
func nonZeroRequests(pod *skiffcorev1.Pod) (cpu, mem int64) {
	for i := range pod.Spec.Containers {
		req := pod.Spec.Containers[i].Resources.Requests
		cpu += orDefault(req, corev1.ResourceCPU, defaultMilliCPURequest, true)
		mem += orDefault(req, corev1.ResourceMemory, defaultMemoryRequest, false)
	}
	return cpu, mem
}

func orDefault(rl corev1.ResourceList, name corev1.ResourceName, def int64, milli bool) int64 {
	q, ok := rl[name]
	if !ok {
		return def
	}
	if milli {
		return q.MilliValue()
	}
	return q.Value()
}

// NodeInfo is one node as the scheduler sees it: the node, the pods bound
// or assumed onto it, and running totals that the filters read.
type NodeInfo struct {
	Node *corev1.Node
	Name string

	pods        []*PodInfo
	requested   resources
	nonZeroCPU  int64
	nonZeroMem  int64
	allocatable resources
	allowedPods int64
	usedPorts   map[hostPort]int
	// podsWithRequiredAntiAffinity counts pods whose anti-affinity the
	// incoming pod must respect, so nodes without any are skipped fast.
	podsWithRequiredAntiAffinity int
	// notReady is the taint the node's Ready condition implies when the
	// node lifecycle controller has not (yet) put it on the node.
	notReady *corev1.Taint
}

// NewNodeInfo builds a NodeInfo for a node with no pods yet.
func NewNodeInfo(n *skiffcorev1.Node) *NodeInfo {
	ni := &NodeInfo{}
	ni.SetNode(n)
	return ni
}

// SetNode replaces the node object, keeping the pods.
func (ni *NodeInfo) SetNode(n *skiffcorev1.Node) {
	ni.Node = podutil.NodeAsCore(n)
	ni.Name = n.Name
	ni.allocatable = newResources(n.Status.Allocatable)
	ni.allowedPods = 0
	if q, ok := n.Status.Allocatable[corev1.ResourcePods]; ok {
		ni.allowedPods = q.Value()
	}
	ni.notReady = readinessTaint(ni.Node)
}

// Pods returns the pods on the node (bound or assumed).
func (ni *NodeInfo) Pods() []*PodInfo { return ni.pods }

// AddPod accounts a pod onto the node.
func (ni *NodeInfo) AddPod(pi *PodInfo) {
	ni.pods = append(ni.pods, pi)
	ni.account(pi, 1)
}

// RemovePod takes a pod off the node, by UID; it reports whether the pod
// was there.
func (ni *NodeInfo) RemovePod(pi *PodInfo) bool {
	for i, p := range ni.pods {
		if p.Pod.UID == pi.Pod.UID {
			last := len(ni.pods) - 1
			ni.pods[i] = ni.pods[last]
			ni.pods[last] = nil
			ni.pods = ni.pods[:last]
			ni.account(p, -1)
			return true
		}
	}
	return false
}

func (ni *NodeInfo) account(pi *PodInfo, sign int64) {
	ni.requested.add(&pi.requests, sign)
	ni.nonZeroCPU += sign * pi.nonZeroCPU
	ni.nonZeroMem += sign * pi.nonZeroMemory
	for _, p := range pi.ports {
		if ni.usedPorts == nil {
			ni.usedPorts = map[hostPort]int{}
		}
		ni.usedPorts[p] += int(sign)
		if ni.usedPorts[p] <= 0 {
			delete(ni.usedPorts, p)
		}
	}
	if len(pi.requiredAntiAffinity) > 0 {
		ni.podsWithRequiredAntiAffinity += int(sign)
	}
}

// Clone returns a copy whose pod list and totals can change without
// touching ni, for preemption's what-if runs.
func (ni *NodeInfo) Clone() *NodeInfo {
	c := *ni
	c.pods = append([]*PodInfo(nil), ni.pods...)
	c.requested = ni.requested.clone()
	if ni.usedPorts != nil {
		c.usedPorts = make(map[hostPort]int, len(ni.usedPorts))
		for k, v := range ni.usedPorts {
			c.usedPorts[k] = v
		}
	}
	return &c
}
