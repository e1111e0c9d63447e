package job

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func failedPod(exitCodes map[string]int32, conditions ...corev1.PodCondition) *skiffcorev1.Pod {
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	p.Status.Phase = corev1.PodFailed
	p.Status.Conditions = conditions
	for _, name := range []string{"main", "side"} {
		if code, ok := exitCodes[name]; ok {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}},
			})
		}
	}
	return p
}

func TestJudgeFailure(t *testing.T) {
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1}}},
		{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1}}},
	}}
	disrupted := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}
	cases := []struct {
		name   string
		policy *batchv1.PodFailurePolicy
		pod    *skiffcorev1.Pod
		want   batchv1.PodFailurePolicyAction
	}{
		{"no policy counts", nil, failedPod(map[string]int32{"main": 42}), batchv1.PodFailurePolicyActionCount},
		{"exit code in the list fails the job", policy, failedPod(map[string]int32{"main": 42}), batchv1.PodFailurePolicyActionFailJob},
		{"the rule names another container", policy, failedPod(map[string]int32{"side": 42}), batchv1.PodFailurePolicyActionCount},
		{"a condition pattern matches", policy, failedPod(map[string]int32{"main": 1}, disrupted), batchv1.PodFailurePolicyActionIgnore},
		{"NotIn matches other codes", policy, failedPod(map[string]int32{"main": 3}), batchv1.PodFailurePolicyActionCount},
		{"a later rule matches", policy, failedPod(map[string]int32{"main": 1}), batchv1.PodFailurePolicyActionIgnore},
		{"exit code 0 never matches", policy, failedPod(map[string]int32{"main": 0}), batchv1.PodFailurePolicyActionCount},
	}
	for _, tc := range cases {
		got, msg := judgeFailure(tc.policy, tc.pod)
		if got != tc.want {
			t.Errorf("%s: action %s, want %s", tc.name, got, tc.want)
		}
		if got == batchv1.PodFailurePolicyActionFailJob && !strings.Contains(msg, "exit code 42") {
			t.Errorf("%s: message %q does not name the exit code", tc.name, msg)
		}
	}
}

func TestTTLLeft(t *testing.T) {
	done := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	finished := func(ttl *int32) *skiffbatchv1.Job {
		j := &skiffbatchv1.Job{}
		j.Spec.TTLSecondsAfterFinished = ttl
		j.Status.CompletionTime = &metav1.Time{Time: done}
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: done}}}
		return j
	}
	if _, ok := ttlLeft(finished(nil), done); ok {
		t.Error("a job without ttlSecondsAfterFinished has a TTL")
	}
	if _, ok := ttlLeft(&skiffbatchv1.Job{Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ptr.To[int32](1)}}, done); ok {
		t.Error("an unfinished job has a TTL")
	}
	if left, ok := ttlLeft(finished(ptr.To[int32](10)), done.Add(4*time.Second)); !ok || left != 6*time.Second {
		t.Errorf("ttlLeft = %s %v, want 6s", left, ok)
	}
	if left, _ := ttlLeft(finished(ptr.To[int32](10)), done.Add(time.Minute)); left != 0 {
		t.Errorf("ttlLeft after expiry = %s, want 0", left)
	}
}
