package job

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// reasonPodFailurePolicy is the Failed reason when a FailJob rule matched.
const reasonPodFailurePolicy = "PodFailurePolicy"

// judgeFailure applies the Job's podFailurePolicy to a failed pod, as
// upstream: the first rule that matches decides. It returns the matched
// action (Count when no rule matches, or without a policy) and, for
// FailJob, the message of the Job's failure.
func judgeFailure(policy *batchv1.PodFailurePolicy, p *skiffcorev1.Pod) (batchv1.PodFailurePolicyAction, string) {
	if policy == nil {
		return batchv1.PodFailurePolicyActionCount, ""
	}
	for i, rule := range policy.Rules {
		if rule.OnExitCodes != nil {
			if c := matchExitCodes(rule.OnExitCodes, p); c != nil {
				return rule.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					c.Name, p.Namespace, p.Name, c.State.Terminated.ExitCode, rule.Action, i)
			}
			continue
		}
		for _, pattern := range rule.OnPodConditions {
			want := pattern.Status
			if want == "" {
				want = corev1.ConditionTrue
			}
			if slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == pattern.Type && c.Status == want }) {
				return rule.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
					p.Namespace, p.Name, pattern.Type, rule.Action, i)
			}
		}
	}
	return batchv1.PodFailurePolicyActionCount, ""
}

// matchExitCodes returns the first terminated container whose non-zero
// exit code the requirement matches. Exit code 0 never matches: a
// container that succeeded did not cause the failure.
func matchExitCodes(req *batchv1.PodFailurePolicyOnExitCodesRequirement, p *skiffcorev1.Pod) *corev1.ContainerStatus {
	statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
	for i := range statuses {
		c := &statuses[i]
		if c.State.Terminated == nil || c.State.Terminated.ExitCode == 0 {
			continue
		}
		if req.ContainerName != nil && *req.ContainerName != c.Name {
			continue
		}
		in := slices.Contains(req.Values, c.State.Terminated.ExitCode)
		if (req.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
			return c
		}
	}
	return nil
}
