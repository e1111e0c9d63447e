package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// cgroupFS is where the cgroup hierarchies are mounted.
const cgroupFS = "/sys/fs/cgroup"

// Stats measures the node (the machine's root cgroup, or Config.NodeCgroup)
// and each pod with a running container (the pod's cgroup and each running
// container's): cumulative CPU time and memory now. The rates (usageNanoCores) need two readings,
// which is the caller's business: the node agent's server keeps the last
// one.
func (r *Runtime) Stats(ctx context.Context) (statsv1alpha1.NodeStats, []statsv1alpha1.PodStats, error) {
	ctx = r.ctx(ctx)
	var node statsv1alpha1.NodeStats
	usage, err := r.nodeUsage(r.clock.Now())
	if err != nil {
		return node, nil, fmt.Errorf("measuring the node: %w", err)
	}
	node.CPU, node.Memory = usage.cpu, usage.memory
	pods, err := r.ListPods(ctx)
	if err != nil {
		return node, nil, fmt.Errorf("listing the pods to measure: %w", err)
	}
	var out []statsv1alpha1.PodStats
	for _, p := range pods {
		ps, err := r.podStats(ctx, p.UID)
		if err != nil {
			return node, nil, err
		}
		if ps == nil {
			continue
		}
		ps.PodRef = statsv1alpha1.PodReference{Name: p.Name, Namespace: p.Namespace, UID: string(p.UID)}
		out = append(out, *ps)
	}
	return node, out, nil
}

// nodeUsage reads the node's cgroup: the machine's root, as upstream's
// kubelet reads it, unless Config.NodeCgroup names the node's own. That
// cgroup is made by runc with the node's first pod; until then the node
// runs nothing of its own, and reads as idle rather than as an error that
// would hide its pods' figures too.
func (r *Runtime) nodeUsage(now time.Time) (cgroupUsage, error) {
	cgroup := r.cfg.NodeCgroup
	if cgroup == "" {
		cgroup = "/"
	}
	u, err := readCgroup(cgroupFS, cgroup, now)
	if err != nil && !cgroupExists(cgroupFS, cgroup) {
		return idle(now), nil
	}
	return u, err
}

// cgroupExists reports whether cgroup is in the hierarchy readCgroup reads
// its CPU time from.
func cgroupExists(fs, cgroup string) bool {
	dir := filepath.Join(fs, cgroup)
	if _, err := os.Stat(filepath.Join(fs, "cpuacct")); err == nil {
		dir = filepath.Join(fs, "cpuacct", cgroup)
	}
	_, err := os.Stat(dir)
	return err == nil
}

// idle is the reading of a cgroup that has used nothing.
func idle(at time.Time) cgroupUsage {
	t := metav1.NewTime(at)
	return cgroupUsage{
		cpu:    &statsv1alpha1.CPUStats{Time: t, UsageCoreNanoSeconds: new(uint64)},
		memory: &statsv1alpha1.MemoryStats{Time: t, UsageBytes: new(uint64), WorkingSetBytes: new(uint64)},
	}
}

// podStats measures a pod's cgroup and the cgroups of its running
// containers; nil when none runs.
func (r *Runtime) podStats(ctx context.Context, uid types.UID) (*statsv1alpha1.PodStats, error) {
	cs, err := r.podContainers(ctx, uid)
	if err != nil {
		return nil, fmt.Errorf("listing the containers of pod %s to measure: %w", uid, err)
	}
	// The latest run of each container, when it runs. Its labels say so
	// without asking its task: a run that exited has its end in them once
	// the agent synced it, and its cgroup is gone before that.
	latest := map[string]*observedContainer{}
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		o := observeLabels(info.Labels)
		o.ID = c.ID()
		if prev, ok := latest[o.Name]; !ok || prev.Attempt < o.Attempt {
			latest[o.Name] = o
		}
	}
	now := r.clock.Now()
	ps := &statsv1alpha1.PodStats{Containers: []statsv1alpha1.ContainerStats{}}
	for name, o := range latest {
		if o.State != stateRunning {
			continue
		}
		u, err := readCgroup(cgroupFS, path.Join(r.cgroupParent(uid), o.ID), now)
		if err != nil {
			// It exited since its labels were read.
			continue
		}
		ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{
			Name: name, StartTime: metav1.NewTime(o.StartedAt), CPU: u.cpu, Memory: u.memory,
		})
		if ps.StartTime.IsZero() || o.StartedAt.Before(ps.StartTime.Time) {
			ps.StartTime = metav1.NewTime(o.StartedAt)
		}
	}
	if len(ps.Containers) == 0 {
		return nil, nil
	}
	pod, err := readCgroup(cgroupFS, r.cgroupParent(uid), now)
	if err != nil {
		return nil, nil
	}
	ps.CPU, ps.Memory = pod.cpu, pod.memory
	return ps, nil
}

// cgroupUsage is one reading of a cgroup, in the Summary API's terms.
type cgroupUsage struct {
	cpu    *statsv1alpha1.CPUStats
	memory *statsv1alpha1.MemoryStats
}

// readCgroup reads a cgroup's cumulative CPU time and its memory under fs:
// from the v1 cpuacct and memory hierarchies when they are mounted, else
// from cgroup2. The working set is the usage less the inactive file pages,
// which the kernel can take back at once, as the kubelet counts it; the RSS
// is the anonymous memory, when memory.stat has it.
func readCgroup(fs, cgroup string, at time.Time) (cgroupUsage, error) {
	var cpuNanos, usage, inactive uint64
	var rss *uint64
	var err error
	if _, statErr := os.Stat(filepath.Join(fs, "cpuacct")); statErr == nil {
		cpuNanos, err = readUint(filepath.Join(fs, "cpuacct", cgroup, "cpuacct.usage"))
		if err == nil {
			usage, err = readUint(filepath.Join(fs, "memory", cgroup, "memory.usage_in_bytes"))
		}
		inactive = statValue(filepath.Join(fs, "memory", cgroup, "memory.stat"), "total_inactive_file")
		rss = optionalStat(filepath.Join(fs, "memory", cgroup, "memory.stat"), "total_rss")
	} else {
		usec, ok := counter(filepath.Join(fs, cgroup, "cpu.stat"), "usage_usec")
		if !ok {
			return cgroupUsage{}, fmt.Errorf("cgroup %s: no usage_usec in %s", cgroup, filepath.Join(fs, cgroup, "cpu.stat"))
		}
		cpuNanos = uint64(usec) * 1000
		usage, err = readUint(filepath.Join(fs, cgroup, "memory.current"))
		inactive = statValue(filepath.Join(fs, cgroup, "memory.stat"), "inactive_file")
		rss = optionalStat(filepath.Join(fs, cgroup, "memory.stat"), "anon")
	}
	if err != nil {
		return cgroupUsage{}, fmt.Errorf("cgroup %s: %w", cgroup, err)
	}
	workingSet := usage - min(inactive, usage)
	t := metav1.NewTime(at)
	return cgroupUsage{
		cpu:    &statsv1alpha1.CPUStats{Time: t, UsageCoreNanoSeconds: &cpuNanos},
		memory: &statsv1alpha1.MemoryStats{Time: t, UsageBytes: &usage, WorkingSetBytes: &workingSet, RSSBytes: rss},
	}, nil
}

// readUint reads a cgroup file that holds one number.
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, errors.New(file + ": not a number: " + strings.TrimSpace(string(b)))
	}
	return n, nil
}

// optionalStat is a "name N" line's value of a memory.stat file, nil when
// the file or the line is missing.
func optionalStat(file, name string) *uint64 {
	n, ok := counter(file, name)
	if !ok {
		return nil
	}
	v := uint64(max(n, 0))
	return &v
}

// statValue is a "name N" line's value of a memory.stat file, 0 when the
// file or the line is missing.
func statValue(file, name string) uint64 {
	n, _ := counter(file, name)
	return uint64(max(n, 0))
}
