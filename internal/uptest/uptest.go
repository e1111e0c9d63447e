// Package uptest runs `make up`'s program (hack/up) for end-to-end tests:
// it builds up, the manager and the node agent from the checkout, starts a
// cluster with the flags a test gives (private ports, bridges and ranges,
// so that it never clashes with a user's `make up`), waits until up says it
// is up, and stops it the way a user does, with Ctrl-C.
//
// StartCluster does all of that for a multi-node cluster on a suite's own
// names and ranges, and Cluster.Stop checks that nothing of it is left.
//
// Its functions return errors instead of failing a testing.T, so that a
// suite can start one cluster in TestMain; only RequireMachine, which
// checks what a cluster needs of the machine, stops a test.
package uptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binaries are the programs a cluster runs, built from the checkout.
type Binaries struct {
	Up, Manager, NodeAgent string
}

// Build compiles up, the manager and the node agent of the checkout at
// root into dir.
func Build(root, dir string) (Binaries, error) {
	b := Binaries{Up: filepath.Join(dir, "up"), Manager: filepath.Join(dir, "manager"), NodeAgent: filepath.Join(dir, "nodeagent")}
	for out, pkg := range map[string]string{b.Up: "./hack/up", b.Manager: "./cmd/manager", b.NodeAgent: "./cmd/nodeagent"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		if output, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
		}
	}
	return b, nil
}

// Run is a running up.
type Run struct {
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
	err    error
}

// Start runs up with args from the checkout at root, and returns once up
// says "skiff is up". It fails, killing up, when up prints an error
// ("make up: ...") or exits, or after timeout.
func Start(root, up string, args []string, timeout time.Duration) (*Run, error) {
	r := &Run{output: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(up, args...)
	r.cmd.Dir, r.cmd.Stdout, r.cmd.Stderr = root, r.output, r.output
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	for deadline := time.Now().Add(timeout); !strings.Contains(r.Output(), "skiff is up"); time.Sleep(200 * time.Millisecond) {
		// "make up:" starts every error up prints before it exits.
		if r.Exited() || strings.Contains(r.Output(), "make up:") || time.Now().After(deadline) {
			_ = r.cmd.Process.Kill()
			<-r.done
			return nil, fmt.Errorf("up did not come up within %s:\n%s", timeout, r.Output())
		}
	}
	return r, nil
}

// Output is what up has printed so far.
func (r *Run) Output() string { return r.output.String() }

// Pid is up's process id.
func (r *Run) Pid() int { return r.cmd.Process.Pid }

// Exited reports whether up has ended, as it does when one of its
// children dies.
func (r *Run) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Stop sends Ctrl-C and waits up to timeout for up to stop everything and
// exit; up is killed after that. Every process up started must be gone.
func (r *Run) Stop(timeout time.Duration) error {
	children := Descendants(r.Pid())
	if r.Exited() {
		return fmt.Errorf("up had stopped on its own before Ctrl-C (%v):\n%s", r.err, r.Output())
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-r.done:
	case <-time.After(timeout):
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("up did not stop within %s of Ctrl-C:\n%s", timeout, r.Output())
	}
	var errs []error
	if r.err != nil {
		errs = append(errs, fmt.Errorf("up exited with %v after Ctrl-C:\n%s", r.err, r.Output()))
	}
	for _, pid := range children {
		if syscall.Kill(pid, 0) == nil {
			errs = append(errs, fmt.Errorf("process %d (%s) outlived up", pid, Cmdline(pid)))
		}
	}
	return errors.Join(errs...)
}

// Descendants lists the processes below parent (children, grandchildren,
// ...), from /proc.
func Descendants(parent int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	for queue := children[parent]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// parentOf reads a process's parent from /proc/<pid>/stat.
func parentOf(pid int) (int, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces; the fields after ')' are fixed.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	var ppid int
	if len(fields) < 2 {
		return 0, false
	}
	_, err = fmt.Sscanf(fields[1], "%d", &ppid)
	return ppid, err == nil
}

// Cmdline is a process's command line, split into its arguments; nil once
// the process is gone.
func Cmdline(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// FlagValue is the value of --name=value (or --name value) in args, "" when
// absent.
func FlagValue(args []string, name string) string {
	for i, a := range args {
		for _, dashes := range []string{"--", "-"} {
			if v, ok := strings.CutPrefix(a, dashes+name+"="); ok {
				return v
			}
			if a == dashes+name && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
