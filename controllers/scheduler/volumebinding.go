package scheduler

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// volumeBinding refuses nodes that a pod's bound PersistentVolumes cannot
// be reached from, as upstream's VolumeBinding filter does for local
// volumes: a StatefulSet pod whose claim lives on one node's disk must go
// back to that node, or it would start with an empty directory.
type volumeBinding struct{}

func (volumeBinding) Name() string { return "VolumeBinding" }

const volumeNodeAffinityReason = "node(s) had volume node affinity conflict"

func (volumeBinding) Filter(s *cycleState, n *NodeInfo) *Status {
	for _, a := range s.pod.volumeNodeAffinity {
		if ok, _ := a.Match(n.Node); !ok {
			return unresolvable(volumeNodeAffinityReason)
		}
	}
	return nil
}

// volumeNodeAffinity reads the node affinity of the volumes bound to a
// pod's claims. A claim not yet bound (a WaitForFirstConsumer claim, say)
// constrains nothing: its volume is made where the pod goes.
func volumeNodeAffinity(ctx context.Context, c client.Reader, pod *skiffcorev1.Pod) []nodeaffinity.RequiredNodeAffinity {
	var out []nodeaffinity.RequiredNodeAffinity
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		claim := &corev1.PersistentVolumeClaim{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: v.PersistentVolumeClaim.ClaimName}, claim); err != nil || claim.Spec.VolumeName == "" {
			continue
		}
		pv := &corev1.PersistentVolume{}
		if err := c.Get(ctx, client.ObjectKey{Name: claim.Spec.VolumeName}, pv); err != nil {
			continue
		}
		if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
			continue
		}
		// Only the node selector matters; a pod carrying it is a
		// convenient way to build the matcher.
		holder := &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: pv.Spec.NodeAffinity.Required,
		}}}}
		out = append(out, nodeaffinity.GetRequiredNodeAffinity(holder))
	}
	return out
}
