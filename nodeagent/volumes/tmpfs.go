package volumes

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ensureTmpfs mounts a tmpfs on dir unless one is there already (a repeated
// Setup, or an agent restart), limited to size bytes when size > 0.
func ensureTmpfs(dir string, size int64) error {
	real, mounted, err := mountsAt(dir, mountinfo.SingleEntryFilter)
	if err != nil {
		return err
	}
	if len(mounted) > 0 {
		return nil
	}
	opts := "mode=0755"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", real, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", real, err)
	}
	return nil
}

// unmountUnder unmounts every mount at or below dir, deepest first, so that
// removing dir afterwards deletes only the agent's own files.
func unmountUnder(dir string) error {
	_, mounts, err := mountsAt(dir, mountinfo.PrefixFilter)
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		err := unix.Unmount(m.Mountpoint, 0)
		if errors.Is(err, unix.EBUSY) {
			// Still open by a process of the node: detach it, the kernel
			// frees it when the last user goes.
			err = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) { // EINVAL: already gone
			return fmt.Errorf("unmounting %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// mountsAt returns dir without symlinks, as the kernel names mount points,
// and the mounts that filter(dir) selects.
func mountsAt(dir string, filter func(string) mountinfo.FilterFunc) (string, []*mountinfo.Info, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", nil, err
	}
	mounts, err := mountinfo.GetMounts(filter(real))
	return real, mounts, err
}
