package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
)

// execSeq numbers exec processes, whose IDs must be unique per task.
var execSeq atomic.Uint64

// ExecProbe runs cmd in a running container, as an exec probe does, and
// returns its exit code and combined output. It gives up after timeout,
// killing the process, with an error that wraps context.DeadlineExceeded.
func (r *Runtime) ExecProbe(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (int, []byte, error) {
	var out bytes.Buffer
	w := lockedWriter{mu: &sync.Mutex{}, w: &out}
	code, err := r.exec(ctx, containerID, cmd, timeout, cio.WithStreams(nil, w, w))
	return code, out.Bytes(), err
}

// exec runs cmd in the container's namespaces with the container's own
// process settings (user, env, cwd) and waits for it.
func (r *Runtime) exec(ctx context.Context, containerID string, cmd []string, timeout time.Duration, streams cio.Opt) (int, error) {
	ctx = r.ctx(ctx)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := r.client.LoadContainer(ctx, containerID)
	if err != nil {
		return 0, err
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("container %s is not running: %w", containerID, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return 0, err
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = cmd, false
	id := fmt.Sprintf("exec-%d", execSeq.Add(1))
	proc, err := task.Exec(ctx, id, &pspec, cio.NewCreator(streams))
	if err != nil {
		return 0, err
	}
	// Delete with a context of its own: ctx may have timed out.
	defer func() { _, _ = proc.Delete(r.ctx(context.Background()), containerd.WithProcessKill) }()
	exited, err := proc.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := proc.Start(ctx); err != nil {
		return 0, err
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		return int(code), err
	case <-ctx.Done():
		_ = proc.Kill(r.ctx(context.Background()), syscall.SIGKILL)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("command %q timed out after %s: %w", cmd, timeout, context.DeadlineExceeded)
		}
		return 0, ctx.Err()
	}
}
