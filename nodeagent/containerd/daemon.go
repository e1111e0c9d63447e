package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd"
)

// Daemon is a containerd that skiff started for itself, with its own root,
// state and socket, for the tests and `make up` on a machine where no
// containerd runs. Its CRI plugin is off: skiff's node agent is the kubelet
// and talks to containerd's own API.
type Daemon struct {
	// Address is the daemon's socket.
	Address string
	// Dir holds its root, state, config and log.
	Dir string

	cmd  *exec.Cmd
	done chan error
}

// daemonConfig is containerd's configuration for a private daemon. The
// snapshotters skiff does not use are disabled so that they do not probe the
// host and log errors at start.
const daemonConfig = `version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[debug]
  level = "warn"
`

// StartDaemon starts containerd with everything under dir and waits until
// it answers. Its output goes to dir/containerd.log, or also to logw when
// logw is not nil. binary is the containerd program ("" finds it on PATH).
func StartDaemon(ctx context.Context, binary, dir string, logw io.Writer) (*Daemon, error) {
	if binary == "" {
		p, err := exec.LookPath("containerd")
		if err != nil {
			return nil, fmt.Errorf("containerd is not installed: run `make node-prereqs` (apt-get install containerd runc): %w", err)
		}
		binary = p
	}
	cfg, address, err := WriteDaemonConfig(dir)
	if err != nil {
		return nil, err
	}
	dir = filepath.Dir(cfg)
	d := &Daemon{Address: address, Dir: dir, done: make(chan error, 1)}
	logf, err := os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	out := io.Writer(logf)
	if logw != nil {
		out = io.MultiWriter(logf, logw)
	}
	// A socket left by a daemon that was killed would make the new one
	// fail to listen.
	_ = os.Remove(d.Address)
	d.cmd = exec.Command(binary, "--config", cfg)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	// Its own process group, so that a Ctrl-C meant for `make up` reaches
	// it through Stop, in order, and not at once.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() { d.done <- d.cmd.Wait(); logf.Close() }()
	if err := d.waitReady(ctx); err != nil {
		_ = d.Stop()
		return nil, err
	}
	return d, nil
}

// WriteDaemonConfig writes the configuration of a private containerd that
// keeps everything under dir, and returns its path and the daemon's
// socket, for a caller that runs `containerd --config` itself.
func WriteDaemonConfig(dir string) (config, address string, err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", "", err
	}
	address, config = filepath.Join(dir, "containerd.sock"), filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(daemonConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), address)
	return config, address, os.WriteFile(config, []byte(body), 0o644)
}

// waitReady polls the daemon's version until it answers.
func (d *Daemon) waitReady(ctx context.Context) error {
	exited := func() error {
		select {
		case err := <-d.done:
			d.done <- err
			return fmt.Errorf("containerd exited at start (%v): see %s", err, filepath.Join(d.Dir, "containerd.log"))
		default:
			return nil
		}
	}
	return WaitForDaemon(ctx, d.Address, 30*time.Second, exited)
}

// WaitForDaemon polls containerd at address until it answers, giving up
// after timeout or as soon as failed reports an error (the daemon died).
func WaitForDaemon(ctx context.Context, address string, timeout time.Duration, failed func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := failed(); err != nil {
			return err
		}
		err := ping(ctx, address)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer on %s within %s: %w", address, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping asks the daemon at address for its version.
func ping(ctx context.Context, address string) error {
	if _, err := os.Stat(address); err != nil {
		return err
	}
	c, err := containerd.New(address, containerd.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Version(ctx)
	return err
}

// Stop stops the daemon: SIGTERM, then SIGKILL after 10 s. The containers'
// shims outlive it, as they outlive a containerd restart.
func (d *Daemon) Stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return exitedOnSignal(err)
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		return exitedOnSignal(<-d.done)
	}
}

// exitedOnSignal treats an exit caused by the stop signal as a clean stop.
func exitedOnSignal(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && !ee.Exited() {
		return nil
	}
	return err
}
