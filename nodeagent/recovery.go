package nodeagent

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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
	pods, err := a.runtime.ListPods(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, rp := range pods {
		key := types.NamespacedName{Namespace: rp.Namespace, Name: rp.Name}
		pod := &skiffcorev1.Pod{}
		err := h.reader.Get(ctx, key, pod)
		switch {
		case err == nil && pod.UID == rp.UID && pod.Spec.NodeName == a.cfg.Name:
			h.mu.Lock()
			h.running[key] = runningPod{uid: rp.UID, node: a.cfg.Name}
			h.mu.Unlock()
			continue
		case err != nil && !apierrors.IsNotFound(err):
			errs = append(errs, err)
			continue
		}
		stale := &skiffcorev1.Pod{}
		stale.UID, stale.Namespace, stale.Name = rp.UID, rp.Namespace, rp.Name
		log.FromContext(ctx).Info("removing the containers of a pod deleted while the agent was down", "pod", key, "uid", rp.UID)
		if err := a.runtime.KillPod(ctx, stale, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, a.runtime.RemovePod(ctx, rp.UID))
	}
	return errors.Join(errs...)
}
