package scheduler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// assumedTTL is how long an assumed pod may stay unconfirmed once its
// binding write has returned: if the informer has not shown it bound by
// then, the watch lost it and the assumption is dropped.
const assumedTTL = 30 * time.Second

// podEntry is one pod the cache holds on a node.
type podEntry struct {
	info    *PodInfo
	node    string
	assumed bool
	// deadline is when an assumed pod expires; zero while its binding is
	// still in flight.
	deadline time.Time
}

// Cache is the scheduler's view of the nodes and the pods on them, kept
// up to date by informer events and by the scheduler's own assumptions:
// a pod chosen for a node counts there at once, before its binding is
// written, so that a burst of pods never overcommits a node. Every method
// takes the lock; the scheduling cycle holds it (Lock/Unlock) while it
// reads the nodes.
type Cache struct {
	mu    sync.Mutex
	nodes map[string]*NodeInfo
	// list is the nodes that exist, in a stable order for the rotating
	// start index.
	list []*NodeInfo
	pods map[types.UID]*podEntry
	// nominated are pods promised a node by preemption, by node.
	nominated     map[string][]*PodInfo
	nominatedNode map[types.UID]string
	now           func() time.Time
}

// NewCache returns an empty cache; now is the clock for expirations.
func NewCache(now func() time.Time) *Cache {
	return &Cache{
		nodes: map[string]*NodeInfo{}, pods: map[types.UID]*podEntry{},
		nominated: map[string][]*PodInfo{}, nominatedNode: map[types.UID]string{}, now: now,
	}
}

// Lock and Unlock hold the cache still for a scheduling cycle.
func (c *Cache) Lock()   { c.mu.Lock() }
func (c *Cache) Unlock() { c.mu.Unlock() }

// Nodes returns the existing nodes; call it with the lock held.
func (c *Cache) Nodes() []*NodeInfo { return c.list }

// Nominated returns the nominated pods by node; call it with the lock held.
func (c *Cache) Nominated() map[string][]*PodInfo { return c.nominated }

// AddOrUpdateNode records a node's current state.
func (c *Cache) AddOrUpdateNode(n *skiffcorev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[n.Name]
	switch {
	case !ok:
		ni = NewNodeInfo(n)
		c.nodes[n.Name] = ni
		c.list = append(c.list, ni)
	case ni.Node == nil:
		ni.SetNode(n)
		c.list = append(c.list, ni)
	default:
		ni.SetNode(n)
	}
}

// RemoveNode forgets a node. Its pods stay accounted on a placeholder until
// they go, so that a node that comes back is not seen empty.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[name]
	if !ok {
		return
	}
	for i, x := range c.list {
		if x == ni {
			c.list = append(c.list[:i], c.list[i+1:]...)
			break
		}
	}
	if len(ni.pods) == 0 {
		delete(c.nodes, name)
	} else {
		ni.Node = nil
	}
}

// nodeFor returns the node's info, creating a placeholder for a node not
// seen yet.
func (c *Cache) nodeFor(name string) *NodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = &NodeInfo{Name: name}
		c.nodes[name] = ni
	}
	return ni
}

// Assume accounts a pod onto the node the cycle chose, before its binding
// is written. The lock must be held (the cycle's).
func (c *Cache) Assume(pi *PodInfo, node string) {
	c.removeNominationLocked(pi.Pod.UID)
	c.nodeFor(node).AddPod(pi)
	c.pods[pi.Pod.UID] = &podEntry{info: pi, node: node, assumed: true}
}

// FinishBinding starts the expiry clock of an assumed pod whose binding
// write returned.
func (c *Cache) FinishBinding(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.pods[uid]; ok && e.assumed {
		e.deadline = c.now().Add(assumedTTL)
	}
}

// Forget drops an assumed pod whose binding failed.
func (c *Cache) Forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.pods[uid]; ok && e.assumed {
		c.removeLocked(uid, e)
	}
}

// AddOrUpdatePod records a pod bound to a node, confirming its assumption
// if the scheduler made one.
func (c *Cache) AddOrUpdatePod(pi *PodInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid := pi.Pod.UID
	c.removeNominationLocked(uid)
	if e, ok := c.pods[uid]; ok {
		c.removeLocked(uid, e)
	}
	node := pi.Pod.Spec.NodeName
	c.nodeFor(node).AddPod(pi)
	c.pods[uid] = &podEntry{info: pi, node: node}
}

// RemovePod forgets a pod that was deleted or finished.
func (c *Cache) RemovePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeNominationLocked(uid)
	if e, ok := c.pods[uid]; ok {
		c.removeLocked(uid, e)
	}
}

// IsAssumedOrBound reports whether the cache already has the pod on a node,
// so that a stale queue entry is not scheduled twice.
func (c *Cache) IsAssumedOrBound(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pods[uid]
	return ok
}

func (c *Cache) removeLocked(uid types.UID, e *podEntry) {
	delete(c.pods, uid)
	ni, ok := c.nodes[e.node]
	if !ok {
		return
	}
	ni.RemovePod(e.info)
	if ni.Node == nil && len(ni.pods) == 0 {
		delete(c.nodes, e.node)
	}
}

// Nominate promises node to a pod that preemption is making room for.
// The lock must be held (the cycle's).
func (c *Cache) Nominate(pi *PodInfo, node string) {
	c.removeNominationLocked(pi.Pod.UID)
	c.nominated[node] = append(c.nominated[node], pi)
	c.nominatedNode[pi.Pod.UID] = node
}

// UpdateNomination refreshes a pending pod's nomination from its status,
// which is how nominations survive a scheduler restart.
func (c *Cache) UpdateNomination(pi *PodInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, onNode := c.pods[pi.Pod.UID]; onNode {
		// Already assumed or bound: it counts on its node, not as a promise.
		c.removeNominationLocked(pi.Pod.UID)
		return
	}
	if node := pi.Pod.Status.NominatedNodeName; node != "" {
		c.Nominate(pi, node)
	} else {
		c.removeNominationLocked(pi.Pod.UID)
	}
}

// RemoveNomination drops a pod's nomination.
func (c *Cache) RemoveNomination(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeNominationLocked(uid)
}

func (c *Cache) removeNominationLocked(uid types.UID) {
	node, ok := c.nominatedNode[uid]
	if !ok {
		return
	}
	delete(c.nominatedNode, uid)
	pods := c.nominated[node]
	for i, p := range pods {
		if p.Pod.UID == uid {
			pods = append(pods[:i], pods[i+1:]...)
			break
		}
	}
	if len(pods) == 0 {
		delete(c.nominated, node)
	} else {
		c.nominated[node] = pods
	}
}

// Expire drops assumed pods whose binding returned long ago but that the
// informer never showed bound, and returns how many it dropped.
func (c *Cache) Expire() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now, n := c.now(), 0
	for uid, e := range c.pods {
		if e.assumed && !e.deadline.IsZero() && now.After(e.deadline) {
			c.removeLocked(uid, e)
			n++
		}
	}
	return n
}
