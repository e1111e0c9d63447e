package nodeagent

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// watchRuntimes runs once the cache has synced: it takes over what the
// runtimes hold from an agent that ran before this one, then passes the
// runtimes' own change notices to the pod controller until ctx ends.
func (h *Host) watchRuntimes(ctx context.Context, changes chan<- event.GenericEvent) error {
	if !h.mgr.GetCache().WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	for _, a := range h.agents {
		if err := h.recover(ctx, a); err != nil {
			log.FromContext(ctx).Error(err, "taking over the runtime's pods", "node", a.cfg.Name)
		}
		if n, ok := a.runtime.(Notifier); ok {
			n.Notify(ctx, func(p RuntimePod) {
				pod := &skiffcorev1.Pod{}
				pod.Namespace, pod.Name = p.Namespace, p.Name
				select {
				case changes <- event.GenericEvent{Object: pod}:
				case <-ctx.Done():
				}
			})
		}
	}
	<-ctx.Done()
	return nil
}

// recover adopts the runtime's pods that still exist in the API, so that a
// later deletion stops them, and stops and removes those whose pod was
// deleted (or replaced by a namesake) while no agent ran. Adopted pods'
// containers are left running: the pod controller reads them back.
func (h *Host) recover(ctx context.Context, a *agent) error {
	held, err := a.runtime.ListPods(ctx)
	if err != nil {
		return err
	}
	bound, err := h.podsBoundTo(ctx, a.cfg.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, rp := range held {
		if pod, ok := bound[rp.UID]; ok {
			h.mu.Lock()
			h.running[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}] = runningPod{uid: rp.UID, node: a.cfg.Name}
			h.mu.Unlock()
			continue
		}
		stale := &skiffcorev1.Pod{}
		stale.UID, stale.Namespace, stale.Name = rp.UID, rp.Namespace, rp.Name
		log.FromContext(ctx).Info("removing what is left of a pod deleted while the agent was down", "pod", rp.Namespace+"/"+rp.Name, "uid", rp.UID)
		if err := a.runtime.KillPod(ctx, stale, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, a.runtime.RemovePod(ctx, rp.UID))
	}
	return errors.Join(errs...)
}

// podsBoundTo reads, live, the pods bound to a node, by UID: a runtime's
// pod whose UID is not among them was deleted (or replaced by a namesake).
func (h *Host) podsBoundTo(ctx context.Context, node string) (map[types.UID]*skiffcorev1.Pod, error) {
	pods := &skiffcorev1.PodList{}
	if err := h.reader.List(ctx, pods, client.MatchingFields{"spec.nodeName": node}); err != nil {
		return nil, err
	}
	out := make(map[types.UID]*skiffcorev1.Pod, len(pods.Items))
	for i := range pods.Items {
		out[pods.Items[i].UID] = &pods.Items[i]
	}
	return out, nil
}
