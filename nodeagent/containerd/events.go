package containerd

import (
	"context"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/events"
	"github.com/containerd/typeurl/v2"

	"skiff.dev/skiff/nodeagent"
)

// Notify has the runtime tell the agent when a pod's containers change on
// their own, so that the agent syncs the pod at once instead of at its next
// resync: a task exits, or the kernel OOM-kills one. It watches
// containerd's events until ctx ends.
func (r *Runtime) Notify(ctx context.Context, notify func(nodeagent.RuntimePod)) {
	r.mu.Lock()
	r.notify = notify
	r.mu.Unlock()
	go r.watchEvents(r.ctx(ctx), notify)
}

// watchEvents subscribes to task exits and OOM kills, and subscribes again
// if the stream breaks (containerd restarted).
func (r *Runtime) watchEvents(ctx context.Context, notify func(nodeagent.RuntimePod)) {
	for ctx.Err() == nil {
		msgs, errs := r.client.Subscribe(ctx, `topic=="/tasks/exit"`, `topic=="/tasks/oom"`)
		r.handleEvents(ctx, msgs, errs, notify)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (r *Runtime) handleEvents(ctx context.Context, msgs <-chan *events.Envelope, errs <-chan error, notify func(nodeagent.RuntimePod)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-errs:
			return
		case env := <-msgs:
			if env == nil || env.Namespace != r.cfg.Namespace {
				continue
			}
			ev, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				continue
			}
			switch e := ev.(type) {
			case *apievents.TaskExit:
				r.notifyContainer(ctx, e.ContainerID, nil, notify)
			case *apievents.TaskOOM:
				r.notifyContainer(ctx, e.ContainerID, map[string]string{labelOOMKilled: "true"}, notify)
			}
		}
	}
}

// notifyContainer tells the agent which pod a container belongs to,
// labelling the container first when the event says something to keep.
func (r *Runtime) notifyContainer(ctx context.Context, id string, labels map[string]string, notify func(nodeagent.RuntimePod)) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	if labels != nil {
		_, _ = c.SetLabels(ctx, labels)
	}
	l, err := c.Labels(ctx)
	if err != nil || l[labelPodUID] == "" {
		return
	}
	notify(nodeagent.RuntimePod{UID: podUIDOf(l), Namespace: l[labelPodNamespace], Name: l[labelPodName]})
}
