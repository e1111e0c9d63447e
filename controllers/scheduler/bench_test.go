package scheduler

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkScheduleOne measures one scheduling cycle of the pure core over
// 1,000 nodes that already run 10 pods each: cycle state, filtering the
// adaptive share of nodes, scoring, choosing, and assuming the pod.
func BenchmarkScheduleOne(b *testing.B) {
	c := NewCache(time.Now)
	for i := range 1000 {
		name := fmt.Sprintf("n%04d", i)
		c.AddOrUpdateNode(node(name, "64", "256Gi", 110, map[string]string{"zone": fmt.Sprintf("z%d", i%3)}))
		for j := range 10 {
			p := pod(fmt.Sprintf("%s-%d", name, j), "100m", "128Mi", withLabels(map[string]string{"app": "web"}))
			p.Spec.NodeName = name
			c.AddOrUpdatePod(info(p))
		}
	}
	a := newAlgorithm(Config{})
	pods := make([]*PodInfo, 10000)
	for i := range pods {
		pods[i] = info(pod(fmt.Sprintf("new-%d", i), "100m", "128Mi", withLabels(map[string]string{"app": "api"})))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pi := pods[i%len(pods)]
		i++
		c.Lock()
		nodes := c.Nodes()
		n, fe := a.schedule(newCycleState(pi, nodes, c.Nominated()), nodes)
		if fe != nil {
			c.Unlock()
			b.Fatal(fe)
		}
		c.Assume(pi, n.Name)
		c.Unlock()
		b.StopTimer()
		c.Forget(pi.Pod.UID) // keep the cluster the same size
		b.StartTimer()
	}
}
