package job

import (
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestRestartsExceedBackoffLimit(t *testing.T) {
	restarted := func(init, main int32) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{}
		p.Status.Phase = corev1.PodRunning
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", RestartCount: init}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: main}}
		return p
	}
	cases := []struct {
		name    string
		policy  corev1.RestartPolicy
		limit   *int32
		pods    []*skiffcorev1.Pod
		exceeds bool
	}{
		{"no restart yet", corev1.RestartPolicyOnFailure, ptr.To[int32](2), []*skiffcorev1.Pod{restarted(0, 0)}, false},
		{"below the limit", corev1.RestartPolicyOnFailure, ptr.To[int32](2), []*skiffcorev1.Pod{restarted(0, 1)}, false},
		{"the limit is reached", corev1.RestartPolicyOnFailure, ptr.To[int32](2), []*skiffcorev1.Pod{restarted(0, 2)}, true},
		{"init containers and every pod count", corev1.RestartPolicyOnFailure, ptr.To[int32](3), []*skiffcorev1.Pod{restarted(1, 1), restarted(0, 1)}, true},
		{"a limit of 0 allows no restart", corev1.RestartPolicyOnFailure, ptr.To[int32](0), []*skiffcorev1.Pod{restarted(0, 1)}, true},
		{"a limit of 0 with no restart", corev1.RestartPolicyOnFailure, ptr.To[int32](0), []*skiffcorev1.Pod{restarted(0, 0)}, false},
		{"unset limit is upstream's 6", corev1.RestartPolicyOnFailure, nil, []*skiffcorev1.Pod{restarted(0, 5)}, false},
		{"restartPolicy Never: pods fail instead", corev1.RestartPolicyNever, ptr.To[int32](0), []*skiffcorev1.Pod{restarted(0, 3)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &batchv1.JobSpec{BackoffLimit: tc.limit}
			spec.Template.Spec.RestartPolicy = tc.policy
			if got := restartsExceedBackoffLimit(spec, tc.pods); got != tc.exceeds {
				t.Fatalf("restartsExceedBackoffLimit = %v, want %v", got, tc.exceeds)
			}
		})
	}
}

func TestOnlyReplaceFailed(t *testing.T) {
	policy := &batchv1.PodFailurePolicy{}
	cases := []struct {
		name          string
		replacement   *batchv1.PodReplacementPolicy
		failurePolicy *batchv1.PodFailurePolicy
		want          bool
	}{
		{"default: TerminatingOrFailed", nil, nil, false},
		{"default with a podFailurePolicy: Failed", nil, policy, true},
		{"Failed", ptr.To(batchv1.Failed), nil, true},
		{"TerminatingOrFailed", ptr.To(batchv1.TerminatingOrFailed), nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &batchv1.JobSpec{PodReplacementPolicy: tc.replacement, PodFailurePolicy: tc.failurePolicy}
			if got := onlyReplaceFailed(spec); got != tc.want {
				t.Fatalf("onlyReplaceFailed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodSelector(t *testing.T) {
	job := func(manual *bool, sel *metav1.LabelSelector) *skiffbatchv1.Job {
		j := &skiffbatchv1.Job{ObjectMeta: metav1.ObjectMeta{UID: "job-uid"}}
		j.Spec.ManualSelector, j.Spec.Selector = manual, sel
		return j
	}
	app := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	cases := []struct {
		name    string
		job     *skiffbatchv1.Job
		matches labels.Set
		misses  labels.Set
		wantErr bool
	}{
		{"generated: the Job's uid", job(nil, nil), labels.Set{labelControllerUID: "job-uid"}, labels.Set{labelControllerUID: "other"}, false},
		{"a selector without manualSelector is ignored", job(ptr.To(false), app), labels.Set{labelControllerUID: "job-uid"}, labels.Set{"app": "x"}, false},
		{"manual: the user's", job(ptr.To(true), app), labels.Set{"app": "x"}, labels.Set{labelControllerUID: "job-uid"}, false},
		{"manual without a selector", job(ptr.To(true), nil), nil, nil, true},
		{"manual with an empty selector", job(ptr.To(true), &metav1.LabelSelector{}), nil, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := podSelector(tc.job)
			if (err != nil) != tc.wantErr {
				t.Fatalf("podSelector error = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !sel.Matches(tc.matches) || sel.Matches(tc.misses) {
				t.Fatalf("selector %s: matches %v = %v, %v = %v", sel, tc.matches, sel.Matches(tc.matches), tc.misses, sel.Matches(tc.misses))
			}
		})
	}
}

// TestFinishPutsTerminalConditionFirst: the STATUS column shows the first
// True condition, so a finished Job's must be Complete or Failed.
func TestFinishPutsTerminalConditionFirst(t *testing.T) {
	now := metav1.Now()
	types := func(s *batchv1.JobStatus) []batchv1.JobConditionType {
		var out []batchv1.JobConditionType
		for _, c := range s.Conditions {
			out = append(out, c.Type)
		}
		return out
	}
	cases := []struct {
		name   string
		before []batchv1.JobConditionType
		target batchv1.JobConditionType
		want   []batchv1.JobConditionType
	}{
		{"success", []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet}, batchv1.JobSuccessCriteriaMet,
			[]batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobSuccessCriteriaMet}},
		{"failure after a suspension", []batchv1.JobConditionType{batchv1.JobSuspended, batchv1.JobFailureTarget}, batchv1.JobFailureTarget,
			[]batchv1.JobConditionType{batchv1.JobFailed, batchv1.JobSuspended, batchv1.JobFailureTarget}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status := &batchv1.JobStatus{}
			for _, ct := range tc.before {
				setCondition(status, ct, corev1.ConditionTrue, "Reason", "message", now)
			}
			finish(status, findCondition(status, tc.target), now)
			if got := types(status); !slices.Equal(got, tc.want) {
				t.Fatalf("conditions %v, want %v", got, tc.want)
			}
			if c := status.Conditions[0]; c.Status != corev1.ConditionTrue {
				t.Fatalf("first condition %+v is not True", c)
			}
		})
	}
}
