package scheduler

import (
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// node builds a ready skiff Node with the given allocatable cpu, memory
// and pod count, and labels including its hostname.
func node(name, cpu, mem string, pods int, labels map[string]string) *skiffcorev1.Node {
	l := map[string]string{corev1.LabelHostname: name}
	for k, v := range labels {
		l[k] = v
	}
	n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	n.Status.Allocatable = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(mem),
		corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
	}
	n.Status.Capacity = n.Status.Allocatable
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
	return n
}

// podSeq numbers fixture pods, for unique UIDs and increasing ages.
var podSeq atomic.Int64

// pod builds a pending pod with one container requesting cpu and memory
// ("" for none).
func pod(name, cpu, mem string, mutate ...func(*skiffcorev1.Pod)) *skiffcorev1.Pod {
	seq := podSeq.Add(1)
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: "default", UID: types.UID(fmt.Sprintf("uid-%s-%d", name, seq)),
		CreationTimestamp: metav1.NewTime(time.Unix(seq, 0)),
	}}
	c := corev1.Container{Name: "app", Image: "app"}
	if cpu != "" || mem != "" {
		c.Resources.Requests = corev1.ResourceList{}
		if cpu != "" {
			c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
		}
	}
	p.Spec.Containers = []corev1.Container{c}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func withLabels(l map[string]string) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) { p.Labels = l }
}

func withPriority(v int32) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) { p.Spec.Priority = &v }
}

func withHostPort(port int32) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) {
		p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 80, HostPort: port})
	}
}

func withNodeSelector(s map[string]string) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) { p.Spec.NodeSelector = s }
}

func withTolerations(t ...corev1.Toleration) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) { p.Spec.Tolerations = t }
}

func withAntiAffinity(key string, match map[string]string) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: match},
		}}}
	}
}

func withAffinity(key string, match map[string]string) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) {
		if p.Spec.Affinity == nil {
			p.Spec.Affinity = &corev1.Affinity{}
		}
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: match},
		}}}
	}
}

func withSpread(key string, maxSkew int32, when corev1.UnsatisfiableConstraintAction, match map[string]string) func(*skiffcorev1.Pod) {
	return func(p *skiffcorev1.Pod) {
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, corev1.TopologySpreadConstraint{
			MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: match},
		})
	}
}

// info wraps a pod for the pure core, with its spec.priority.
func info(p *skiffcorev1.Pod) *PodInfo {
	var prio int32
	if p.Spec.Priority != nil {
		prio = *p.Spec.Priority
	}
	never := p.Spec.PreemptionPolicy != nil && *p.Spec.PreemptionPolicy == corev1.PreemptNever
	return NewPodInfo(p, prio, never)
}

// nodeWith builds a NodeInfo holding the given pods, bound to it.
func nodeWith(n *skiffcorev1.Node, pods ...*skiffcorev1.Pod) *NodeInfo {
	ni := NewNodeInfo(n)
	for _, p := range pods {
		p.Spec.NodeName = n.Name
		ni.AddPod(info(p))
	}
	return ni
}
