package daemonset

import (
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// daemonTolerations are the tolerations upstream adds to every daemon pod:
// a daemon keeps running on a node that is not ready or unreachable, and is
// placed on nodes under pressure or cordoned, since it often is what the
// node needs to recover. They carry no tolerationSeconds: the taint manager
// never evicts a daemon pod for them.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// hostNetworkTolerations are added for pods on the host network, which do
// not need the node's pod network to work.
var hostNetworkTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// withDaemonTolerations returns tolerations plus the automatic daemon
// tolerations, each replacing a toleration of the same key and effect that
// the template already has (as upstream's AddOrUpdateTolerationInPodSpec).
func withDaemonTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	auto := daemonTolerations
	if spec.HostNetwork {
		auto = append(append([]corev1.Toleration{}, daemonTolerations...), hostNetworkTolerations...)
	}
	out := make([]corev1.Toleration, 0, len(spec.Tolerations)+len(auto))
	for _, t := range spec.Tolerations {
		if !sameKeyAndEffect(t, auto) {
			out = append(out, t)
		}
	}
	return append(out, auto...)
}

func sameKeyAndEffect(t corev1.Toleration, list []corev1.Toleration) bool {
	for _, a := range list {
		if a.Key == t.Key && a.Effect == t.Effect {
			return true
		}
	}
	return false
}

// eligibility is whether a daemon pod belongs on a node.
type eligibility struct {
	// shouldRun: a pod should be created there if there is none.
	shouldRun bool
	// shouldContinueRunning: a pod already there may stay. A new NoSchedule
	// taint keeps new pods off but does not evict running ones; only a
	// NoExecute taint does.
	shouldContinueRunning bool
}

// nodeEligibility decides, as upstream's NodeShouldRunDaemonPod, whether
// the daemon pod described by spec (with its automatic tolerations already
// added) belongs on node: the node must match the nodeSelector and the
// required node affinity, and its NoSchedule/NoExecute taints must be
// tolerated.
func nodeEligibility(spec *corev1.PodSpec, node *skiffcorev1.Node) eligibility {
	if node.DeletionTimestamp != nil {
		return eligibility{}
	}
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return eligibility{}
	}
	core := podutil.NodeAsCore(node)
	matches, err := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity).Match(core)
	if err != nil || !matches {
		return eligibility{}
	}
	taints := node.Spec.Taints
	_, untoleratedExecute := schedcorev1.FindMatchingUntoleratedTaint(logr.Discard(), taints, spec.Tolerations,
		func(t *corev1.Taint) bool { return t.Effect == corev1.TaintEffectNoExecute }, false)
	if untoleratedExecute {
		return eligibility{}
	}
	_, untoleratedSchedule := schedcorev1.FindMatchingUntoleratedTaint(logr.Discard(), taints, spec.Tolerations,
		func(t *corev1.Taint) bool { return t.Effect == corev1.TaintEffectNoSchedule }, false)
	return eligibility{shouldRun: !untoleratedSchedule, shouldContinueRunning: true}
}

// withNodeAffinity returns affinity with its required node affinity
// replaced by the single term metadata.name=node, as upstream's
// ReplaceDaemonSetPodNodeNameNodeAffinity: the scheduler then places the
// pod on that node (and may preempt there), while the pod's own selector
// terms were already checked by nodeEligibility. Preferred terms and the
// pod (anti-)affinity are kept.
func withNodeAffinity(affinity *corev1.Affinity, node string) *corev1.Affinity {
	out := &corev1.Affinity{}
	if affinity != nil {
		out = affinity.DeepCopy()
	}
	if out.NodeAffinity == nil {
		out.NodeAffinity = &corev1.NodeAffinity{}
	}
	out.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{
				Key: metadataNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
			}},
		}},
	}
	return out
}

// metadataNameField is the only node field a selector may match.
const metadataNameField = "metadata.name"

// targetNode returns the node a daemon pod is for: its spec.nodeName once
// bound, else the node named by its metadata.name affinity term.
func targetNode(pod *skiffcorev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, req := range term.MatchFields {
			if req.Key == metadataNameField && req.Operator == corev1.NodeSelectorOpIn && len(req.Values) == 1 {
				return req.Values[0]
			}
		}
	}
	return ""
}
