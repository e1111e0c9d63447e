package lb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// CgroupRoot finds the cgroup2 hierarchy's mount point: /sys/fs/cgroup/unified
// on hybrid hosts, /sys/fs/cgroup on pure cgroup2 ones. Programs attached there
// see host processes and every container, since runc places containers in the
// same hierarchy.
func CgroupRoot() (string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup2"))
	if err != nil {
		return "", fmt.Errorf("reading mountinfo: %w", err)
	}
	if len(mounts) == 0 {
		return "", errors.New("no cgroup2 hierarchy is mounted: mount one with 'mount -t cgroup2 none /sys/fs/cgroup/unified'")
	}
	// A bind mount of a sub-cgroup (in a container) also shows up; the
	// hierarchy's root is the mount whose root is "/".
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) < len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if m.Root == "/" {
			return m.Mountpoint, nil
		}
	}
	return mounts[0].Mountpoint, nil
}

// bpffsRoot is the conventional bpffs mount point. It is a sysfs directory
// in which nothing can be created until a bpffs is mounted on it.
const bpffsRoot = "/sys/fs/bpf"

// mountBPFFS makes sure dir is on a bpffs, mounting one if needed, since pins
// only exist on bpffs and not every host mounts /sys/fs/bpf.
func mountBPFFS(dir string) error {
	if filepath.Dir(dir) == bpffsRoot && !onBPFFS(bpffsRoot) {
		if err := mount(bpffsRoot); err != nil {
			return err
		}
	}
	if onBPFFS(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the pin directory %s: %w", dir, err)
	}
	if onBPFFS(dir) {
		return nil
	}
	return mount(dir)
}

func onBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

func mount(dir string) error {
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mounting bpffs on %s (needs root): %w", dir, err)
	}
	return nil
}
