package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a child gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// Back-off between restarts of a child that keeps exiting, as systemd's
// RestartSec with a cap: one that ran for restartReset is restarted at once.
const (
	restartDelay = time.Second
	maxRestart   = 30 * time.Second
	restartReset = time.Minute
)

// child is one process that `make up` started, with its log.
type child struct {
	name    string
	log     string
	logDir  string
	program string
	args    []string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	err     error
	// restart makes up start the child again when it exits on its own, as
	// systemd does for a kubelet: a node agent that crashes comes back and
	// adopts its pods, and the cluster goes on. delay is the wait before
	// the next restart.
	restart bool
	delay   time.Duration
	// afterStop, when set, runs once the child has stopped at the end of
	// the run, for what its stop leaves to clean up.
	afterStop func()
}

// start runs a program with its output in logDir/NAME.log. The child dies
// with us (Pdeathsig), so that killing `make up` never orphans etcd or the
// apiserver. Pdeathsig fires when the OS thread that started the child
// ends, not the process: nothing in up may end a thread (a goroutine that
// exits with its thread locked does), which is why internal/nodenet brings
// the threads it moves into a node's netns back.
func start(name, logDir, program string, args ...string) (*child, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "\n==== %s: %s %s\n", time.Now().Format(time.RFC3339), program, strings.Join(args, " "))
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, log: logPath, logDir: logDir, program: program, args: args, cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// again starts an exited child anew, with its program, arguments, log
// and clean-up, once its back-off has passed or ctx ends (nil, nil then).
func (c *child) again(ctx context.Context) (*child, error) {
	delay := restartBackoff(c.delay, time.Since(c.started))
	fmt.Printf("skiff: %s exited (%v); starting it again in %s\n", c.name, c.err, delay)
	select {
	case <-ctx.Done():
		return nil, nil
	case <-time.After(delay):
	}
	next, err := start(c.name, c.logDir, c.program, c.args...)
	if err != nil {
		return nil, err
	}
	next.restart, next.delay, next.afterStop = true, delay, c.afterStop
	return next, nil
}

// restartBackoff is the wait before restarting a child that ran for ran
// after a wait of prev: doubled from restartDelay up to maxRestart while it
// keeps exiting soon, back to restartDelay once it ran for restartReset.
func restartBackoff(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= restartReset {
		return restartDelay
	}
	return min(2*prev, maxRestart)
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the child to end, and kills it if it has not after stopGrace.
func (c *child) stop() {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// failure describes a child that ended on its own, with the end of its log.
func (c *child) failure() error {
	return fmt.Errorf("%s exited (%v); the end of %s:\n%s", c.name, c.err, c.log, tail(c.log, 15))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + string(bytes.Join(lines, []byte("\n  ")))
}
