package containerd

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd"
)

// oomKilled reports whether the kernel's OOM killer killed a process of the
// container, read from its memory cgroup before the cgroup goes with the
// task. containerd's OOM event says the same, but may arrive after the
// exit; the cgroup's counter cannot.
func oomKilled(ctx context.Context, c containerd.Container) bool {
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return false
	}
	path := spec.Linux.CgroupsPath
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory", path, "memory.oom_control"), // cgroup v1
		filepath.Join("/sys/fs/cgroup", path, "memory.events"),             // cgroup v2
	} {
		if n, ok := counter(f, "oom_kill"); ok {
			return n > 0
		}
	}
	return false
}

// counter reads "name N" from a cgroup file of such lines.
func counter(path, name string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			return atoi(v), true
		}
	}
	return 0, false
}
