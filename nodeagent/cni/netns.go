package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// A pod's network namespace lives as long as the pod, not as long as any of
// its processes: containers come and go (restarts, init containers) and must
// all find the same eth0 and IP. So it is kept alive by a bind mount of the
// namespace onto a file, as `ip netns add` does, and containers join it by
// that path in their OCI spec.

// createNetNS makes path a new, empty network namespace. A path that already
// is one is kept, so that a Setup interrupted after this step can go on.
func createNetNS(path string) error {
	if isNetNS(path) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	err = onNetNSThread(
		func() error { return unix.Unshare(unix.CLONE_NEWNET) },
		func() error { return unix.Mount(threadNetNS(), path, "", unix.MS_BIND, "") },
	)
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// onNetNSThread runs fn on an OS thread of its own that enter has moved into
// another network namespace, then moves the thread back. Should the way back
// fail, the thread stays locked, and Go ends it with its goroutine instead of
// reusing a thread that sits in a pod's namespace.
func onNetNSThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(threadNetNS())
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("return to the original network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// threadNetNS is the network namespace of the calling OS thread, which is not
// the process's (/proc/self/ns/net) once the thread has moved.
func threadNetNS() string {
	return fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
}

// isNetNS reports whether path is a mounted network namespace (nsfs), and
// not the bare file left when its mount is gone, after a reboot for instance.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// removeNetNS unmounts and removes a namespace made by createNetNS; whatever
// of it is already gone is not an error. The namespace itself ends when its
// last process does.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
