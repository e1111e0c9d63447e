package top

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// usage is what top prints of a node, pod or container: its CPU rate in
// billionths of a core and its memory working set, as the metrics API
// reports them from the kubelet's summary.
type usage struct {
	nanoCores       uint64
	workingSetBytes uint64
}

// usageOf reads a summary's CPU and memory; false when the agent had no
// rate or no memory reading for it.
func usageOf(cpu *statsv1alpha1.CPUStats, mem *statsv1alpha1.MemoryStats) (usage, bool) {
	if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
		return usage{}, false
	}
	return usage{nanoCores: *cpu.UsageNanoCores, workingSetBytes: *mem.WorkingSetBytes}, true
}

// formatCPU is kubectl top's CPU(cores): whole millicores, "250m".
func formatCPU(nanoCores uint64) string { return fmt.Sprintf("%dm", nanoCores/1_000_000) }

// formatMemory is kubectl top's MEMORY(bytes): whole mebibytes, "64Mi".
func formatMemory(bytes uint64) string { return fmt.Sprintf("%dMi", bytes>>20) }

// percent is kubectl top's CPU(%) and MEMORY(%): the share of the
// allocatable amount, rounded down; "<unknown>" without one.
func percent(used, allocatable uint64) string {
	if allocatable == 0 {
		return "<unknown>"
	}
	return fmt.Sprintf("%d%%", used*100/allocatable)
}

// nodeRow is a line of `top node`; ok is false when the node's agent gave
// no usage, which kubectl prints as <unknown>.
type nodeRow struct {
	name        string
	used        usage
	ok          bool
	allocatable usage // in the same units: nanocores and bytes
}

// nodeRowOf is a node's line from its summary (nil when its agent could not
// be read).
func nodeRowOf(n *skiffcorev1.Node, s *statsv1alpha1.Summary) nodeRow {
	row := nodeRow{name: n.Name}
	if cpu, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
		row.allocatable.nanoCores = uint64(max(cpu.MilliValue(), 0)) * 1_000_000
	}
	if mem, ok := n.Status.Allocatable[corev1.ResourceMemory]; ok {
		row.allocatable.workingSetBytes = uint64(max(mem.Value(), 0))
	}
	if s != nil {
		row.used, row.ok = usageOf(s.Node.CPU, s.Node.Memory)
	}
	return row
}

// cells are the row's columns after NAME.
func (r nodeRow) cells() []string {
	if !r.ok {
		return []string{"<unknown>", "<unknown>", "<unknown>", "<unknown>"}
	}
	return []string{
		formatCPU(r.used.nanoCores), percent(r.used.nanoCores, r.allocatable.nanoCores),
		formatMemory(r.used.workingSetBytes), percent(r.used.workingSetBytes, r.allocatable.workingSetBytes),
	}
}

// podRow is a pod's usage, the sum of its containers' as the metrics API
// counts it, and each container's.
type podRow struct {
	namespace, name string
	used            usage
	containers      []containerRow
}

type containerRow struct {
	name string
	used usage
}

// podRowOf is a pod's row from its node's summary; false when the summary
// lacks the pod or a rate of one of its containers.
func podRowOf(p *skiffcorev1.Pod, s *statsv1alpha1.Summary) (podRow, bool) {
	if s == nil {
		return podRow{}, false
	}
	i := slices.IndexFunc(s.Pods, func(ps statsv1alpha1.PodStats) bool { return ps.PodRef.UID == string(p.UID) })
	if i < 0 || len(s.Pods[i].Containers) == 0 {
		return podRow{}, false
	}
	row := podRow{namespace: p.Namespace, name: p.Name}
	for _, c := range s.Pods[i].Containers {
		u, ok := usageOf(c.CPU, c.Memory)
		if !ok {
			return podRow{}, false
		}
		row.used.nanoCores += u.nanoCores
		row.used.workingSetBytes += u.workingSetBytes
		row.containers = append(row.containers, containerRow{name: c.Name, used: u})
	}
	slices.SortFunc(row.containers, func(a, b containerRow) int { return cmp.Compare(a.name, b.name) })
	return row, true
}

// sortBy orders rows as --sort-by asks: by CPU or memory, the largest
// first, else by name; equal ones by name.
func sortBy[T any](rows []T, by string, used func(T) usage, name func(T) string) {
	slices.SortStableFunc(rows, func(a, b T) int {
		var c int
		switch by {
		case "cpu":
			c = cmp.Compare(used(b).nanoCores, used(a).nanoCores)
		case "memory":
			c = cmp.Compare(used(b).workingSetBytes, used(a).workingSetBytes)
		}
		return cmp.Or(c, cmp.Compare(name(a), name(b)))
	})
}

// checkSortBy refuses a --sort-by other than kubectl top's.
func checkSortBy(by string) error {
	switch by {
	case "", "cpu", "memory":
		return nil
	}
	return fmt.Errorf("--sort-by accepts only cpu or memory, got %q", by)
}
