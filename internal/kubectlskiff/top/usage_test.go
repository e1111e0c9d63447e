package top

import (
	"bytes"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{formatCPU(250_000_000), "250m"},
		{formatCPU(999_999), "0m"},
		{formatCPU(2_000_000_000), "2000m"},
		{formatMemory(64 << 20), "64Mi"},
		{formatMemory(64<<20 - 1), "63Mi"},
		{formatMemory(3 << 30), "3072Mi"},
		{percent(500_000_000, 2_000_000_000), "25%"},
		{percent(3, 1), "300%"},
		{percent(1, 0), "<unknown>"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// stats is a summary's reading of nanoCores and bytes.
func stats(nanoCores, bytes uint64) (*statsv1alpha1.CPUStats, *statsv1alpha1.MemoryStats) {
	return &statsv1alpha1.CPUStats{UsageNanoCores: ptr.To(nanoCores), UsageCoreNanoSeconds: ptr.To[uint64](1)},
		&statsv1alpha1.MemoryStats{WorkingSetBytes: ptr.To(bytes), UsageBytes: ptr.To(bytes + 1)}
}

func TestNodeRow(t *testing.T) {
	n := &skiffcorev1.Node{}
	n.Name = "n1"
	n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	s := &statsv1alpha1.Summary{}
	s.Node.CPU, s.Node.Memory = stats(500_000_000, 1<<30)
	noRate := &statsv1alpha1.Summary{}
	noRate.Node.CPU, noRate.Node.Memory = stats(0, 1)
	noRate.Node.CPU.UsageNanoCores = nil
	bare := &skiffcorev1.Node{}
	bare.Name = "bare"
	for _, tc := range []struct {
		name string
		node *skiffcorev1.Node
		s    *statsv1alpha1.Summary
		want []string
	}{
		{"usage and its share of allocatable", n, s, []string{"500m", "25%", "1024Mi", "25%"}},
		{"an agent that did not answer", n, nil, []string{"<unknown>", "<unknown>", "<unknown>", "<unknown>"}},
		{"a summary without a rate", n, noRate, []string{"<unknown>", "<unknown>", "<unknown>", "<unknown>"}},
		{"a node without allocatable", bare, s, []string{"500m", "<unknown>", "1024Mi", "<unknown>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodeRowOf(tc.node, tc.s).cells(); !slices.Equal(got, tc.want) {
				t.Errorf("cells %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPodRows checks that a pod's usage is its containers' sum, that pods
// the summary lacks are left out, and the sorting and columns of kubectl
// top pod.
func TestPodRows(t *testing.T) {
	pod := func(ns, name string) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{}
		p.Namespace, p.Name, p.UID = ns, name, types.UID("uid-"+name)
		return p
	}
	podStats := func(uid string, containers ...statsv1alpha1.ContainerStats) statsv1alpha1.PodStats {
		return statsv1alpha1.PodStats{PodRef: statsv1alpha1.PodReference{UID: "uid-" + uid}, Containers: containers}
	}
	container := func(name string, nanoCores, bytes uint64) statsv1alpha1.ContainerStats {
		c := statsv1alpha1.ContainerStats{Name: name}
		c.CPU, c.Memory = stats(nanoCores, bytes)
		return c
	}
	s := &statsv1alpha1.Summary{Pods: []statsv1alpha1.PodStats{
		podStats("web", container("side", 50_000_000, 10<<20), container("app", 200_000_000, 54<<20)),
		podStats("db", container("main", 100_000_000, 512<<20)),
		podStats("cache", container("main", 300_000_000, 32<<20)),
		podStats("starting"),
	}}
	var rows []podRow
	for _, p := range []*skiffcorev1.Pod{pod("a", "web"), pod("b", "db"), pod("a", "cache"), pod("a", "starting"), pod("a", "elsewhere")} {
		if row, ok := podRowOf(p, s); ok {
			rows = append(rows, row)
		}
	}
	if _, ok := podRowOf(pod("a", "web"), nil); ok {
		t.Error("a pod of a node whose agent did not answer has a row")
	}

	for _, tc := range []struct {
		name       string
		sortBy     string
		all        bool
		containers bool
		want       string
	}{
		{"by name", "", false, false, "" +
			"NAME      CPU(cores)   MEMORY(bytes)\n" +
			"cache     300m         32Mi\n" +
			"web       250m         64Mi\n" +
			"db        100m         512Mi\n"},
		{"by cpu, all namespaces", "cpu", true, false, "" +
			"NAMESPACE   NAME      CPU(cores)   MEMORY(bytes)\n" +
			"a           cache     300m         32Mi\n" +
			"a           web       250m         64Mi\n" +
			"b           db        100m         512Mi\n"},
		{"by memory, containers", "memory", false, true, "" +
			"POD       NAME      CPU(cores)   MEMORY(bytes)\n" +
			"db        main      100m         512Mi\n" +
			"web       app       200m         54Mi\n" +
			"web       side      50m          10Mi\n" +
			"cache     main      300m         32Mi\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sorted := slices.Clone(rows)
			sortBy(sorted, tc.sortBy, func(r podRow) usage { return r.used }, func(r podRow) string { return r.namespace + "/" + r.name })
			var out bytes.Buffer
			o := &options{sortBy: tc.sortBy, containers: tc.containers}
			if err := o.printPods(&out, sorted, tc.all); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}
