package podgc

import (
	"context"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// terminatedCollector keeps the number of finished pods (Succeeded or
// Failed) at or below a threshold by deleting the oldest, as upstream's
// --terminated-pod-gc-threshold does, so that finished Job pods and the like
// do not pile up in etcd forever. It runs on a timer rather than per pod:
// the decision is about the whole population.
type terminatedCollector struct {
	client    client.Client
	threshold int
	period    time.Duration
}

// Start runs a collection every period until ctx ends. The manager runs it
// only on the elected leader.
func (c *terminatedCollector) Start(ctx context.Context) error {
	tick := time.NewTicker(c.period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := c.collect(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "collecting terminated pods")
			}
		}
	}
}

// collect deletes the finished pods above the threshold, oldest first.
func (c *terminatedCollector) collect(ctx context.Context) error {
	var pods skiffcorev1.PodList
	if err := c.client.List(ctx, &pods); err != nil {
		return err
	}
	for _, p := range excessTerminated(pods.Items, c.threshold) {
		if err := c.client.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
		logf.FromContext(ctx).Info("deleted a terminated pod above the threshold", "pod", client.ObjectKeyFromObject(p), "threshold", c.threshold)
	}
	return nil
}

// excessTerminated returns the finished pods beyond threshold, oldest
// first by creation time (then name, so the choice is stable). Pods
// already being deleted count towards the threshold but are not returned
// again.
func excessTerminated(pods []skiffcorev1.Pod, threshold int) []*skiffcorev1.Pod {
	var done []*skiffcorev1.Pod
	deleting := 0
	for i := range pods {
		p := &pods[i]
		if !podutil.IsTerminal(p) {
			continue
		}
		if podutil.IsTerminating(p) {
			deleting++
			continue
		}
		done = append(done, p)
	}
	excess := len(done) + deleting - threshold
	if excess <= 0 {
		return nil
	}
	sort.Slice(done, func(i, j int) bool {
		a, b := done[i].CreationTimestamp, done[j].CreationTimestamp
		if !a.Equal(&b) {
			return a.Before(&b)
		}
		return done[i].Namespace+"/"+done[i].Name < done[j].Namespace+"/"+done[j].Name
	})
	return done[:min(excess, len(done))]
}
