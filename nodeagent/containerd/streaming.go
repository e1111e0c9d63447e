package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// This file serves the node agent's streaming endpoints (container logs
// and exec) from containerd: which run's log file to read, and processes
// run with the caller's streams and, when asked, a terminal.

// containerRuns lists the runs containerd holds of one container of a pod,
// the latest last, with whether each one's task still runs.
func (r *Runtime) containerRuns(ctx context.Context, pod *skiffcorev1.Pod, name string) ([]*run, error) {
	cs, err := r.podContainers(ctx, pod.UID)
	if err != nil {
		return nil, fmt.Errorf("listing the containers of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	var runs []*run
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil || info.Labels[labelContainerName] != name {
			continue
		}
		o := observeLabels(info.Labels)
		o.ID = c.ID()
		if o.State != stateExited {
			// Read, never finalise: the pod's sync owns the labels.
			o.State = taskState(ctx, c)
		}
		runs = append(runs, &run{ctr: c, observedContainer: o})
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Attempt < runs[j].Attempt })
	return runs, nil
}

// taskState is where a run that has not been seen to exit is now.
func taskState(ctx context.Context, c containerd.Container) runState {
	task, err := c.Task(ctx, nil)
	if err != nil {
		return stateCreated
	}
	st, err := task.Status(ctx)
	if err != nil {
		return stateCreated
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		return stateRunning
	case containerd.Stopped:
		return stateExited
	}
	return stateCreated
}

// ContainerLogs finds the log file of a container's latest run, or of the
// run before it when previous is set, as the kubelet picks the file that
// `kubectl logs [--previous]` reads. running says whether that run was
// still running: a follow of it waits for more lines, a follow of an ended
// run stops at the end of its file. The errors are upstream's, since
// kubectl users know them.
func (r *Runtime) ContainerLogs(ctx context.Context, pod *skiffcorev1.Pod, container string, previous bool) (path string, running bool, err error) {
	if findContainer(&pod.Spec, container) == nil {
		return "", false, fmt.Errorf("container %q is not valid for pod %q", container, pod.Name)
	}
	runs, err := r.containerRuns(r.ctx(ctx), pod, container)
	if err != nil {
		return "", false, err
	}
	n := len(runs)
	if previous {
		// Only the latest run and the one before it are kept (pruneRuns).
		if n < 2 || runs[n-2].Attempt != runs[n-1].Attempt-1 {
			return "", false, fmt.Errorf("previous terminated container %q in pod %q not found", container, pod.Name)
		}
		rn := runs[n-2]
		return r.LogPath(pod, container, rn.Attempt), rn.State == stateRunning, nil
	}
	if n == 0 || (n == 1 && runs[0].State == stateCreated) {
		return "", false, fmt.Errorf("container %q in pod %q is waiting to start: ContainerCreating", container, pod.Name)
	}
	rn := runs[n-1]
	return r.LogPath(pod, container, rn.Attempt), rn.State == stateRunning, nil
}

// Exec runs cmd in the container's latest run while it runs, with the
// container's own process settings (user, env, cwd), copying stdin into
// it and its output into stdout and stderr, as `kubectl exec` does. With
// tty the process gets a terminal, whose size follows resize; its stderr
// goes to the terminal too. A command that exits non-zero returns a
// k8s.io/utils/exec.ExitError carrying the code, which the streaming
// protocol reports as upstream does ("command terminated with exit code N").
// The process is killed when ctx ends (the caller went away).
func (r *Runtime) Exec(ctx context.Context, pod *skiffcorev1.Pod, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
	ctx = r.ctx(ctx)
	if len(cmd) == 0 {
		return errors.New("exec: no command given: pass at least one command= argument")
	}
	runs, err := r.containerRuns(ctx, pod, container)
	if err != nil {
		return err
	}
	if len(runs) == 0 || runs[len(runs)-1].State != stateRunning {
		return fmt.Errorf("container %q in pod %q is not running", container, pod.Name)
	}
	c := runs[len(runs)-1].ctr
	task, err := c.Task(ctx, nil)
	if err != nil {
		return fmt.Errorf("container %q in pod %q is not running: %w", container, pod.Name, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return err
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = cmd, tty

	// cio tells a missing stream by a nil interface: no typed nils.
	streams := cio.Streams{Stdout: io.Discard, Stderr: io.Discard}
	if stdout != nil {
		streams.Stdout = stdout
	}
	if stderr != nil && !tty {
		streams.Stderr = stderr
	}
	// The process sees the end of its stdin only when containerd closes
	// the shim's end of the FIFO, not when the caller's stream ends.
	procReady := make(chan containerd.Process, 1)
	defer close(procReady)
	if stdin != nil {
		streams.Stdin = &closeOnEOF{ctx: r.ctx(context.Background()), r: stdin, ready: procReady}
	}
	opts := []cio.Opt{cio.WithStreams(streams.Stdin, streams.Stdout, streams.Stderr)}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	id := fmt.Sprintf("exec-%d", execSeq.Add(1))
	proc, err := task.Exec(ctx, id, &pspec, cio.NewCreator(opts...))
	if err != nil {
		return fmt.Errorf("starting %q in container %q: %w", cmd, container, err)
	}
	// Delete with a context of its own: ctx ends when the caller leaves.
	defer func() { _, _ = proc.Delete(r.ctx(context.Background()), containerd.WithProcessKill) }()
	exited, err := proc.Wait(ctx)
	if err != nil {
		return err
	}
	if err := proc.Start(ctx); err != nil {
		return fmt.Errorf("starting %q in container %q: %w", cmd, container, err)
	}
	procReady <- proc
	if tty && resize != nil {
		go resizeTerminal(ctx, proc, resize)
	}
	select {
	case st := <-exited:
		code, _, err := st.Result()
		if err != nil {
			return err
		}
		waitOutput(proc.IO(), 2*time.Second)
		if code != 0 {
			return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
		}
		return nil
	case <-ctx.Done():
		_ = proc.Kill(r.ctx(context.Background()), syscall.SIGKILL)
		return ctx.Err()
	}
}

// resizeTerminal passes the caller's terminal size to the process's
// terminal until the caller stops sending.
func resizeTerminal(ctx context.Context, proc containerd.Process, resize <-chan remotecommand.TerminalSize) {
	for {
		select {
		case <-ctx.Done():
			return
		case size, ok := <-resize:
			if !ok {
				return
			}
			if size.Width == 0 || size.Height == 0 {
				continue
			}
			_ = proc.Resize(ctx, uint32(size.Width), uint32(size.Height))
		}
	}
}

// waitOutput waits until the process's output is copied to the caller,
// which may lag its exit, but not forever: a background child that keeps
// the output open must not hold the session.
func waitOutput(pio cio.IO, limit time.Duration) {
	if pio == nil {
		return
	}
	done := make(chan struct{})
	go func() { pio.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// closeOnEOF reads the caller's stdin and, at its end, closes the
// process's stdin so that the process sees EOF (`echo x | kubectl exec -i
// ... cat` ends).
type closeOnEOF struct {
	ctx   context.Context // containerd's namespace, beyond the session's end
	r     io.Reader
	ready <-chan containerd.Process
	once  sync.Once
}

func (c *closeOnEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil {
		c.once.Do(func() {
			go func() {
				if proc, ok := <-c.ready; ok {
					_ = proc.CloseIO(c.ctx, containerd.WithStdinCloser)
				}
			}()
		})
	}
	return n, err
}
