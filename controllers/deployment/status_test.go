package deployment

import (
	"math"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

var statusNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testRS(name string, replicas, ready, available int32) *skiffappsv1.ReplicaSet {
	rs := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name}}
	rs.Spec.Replicas = ptr.To(replicas)
	rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: available}
	return rs
}

func TestCalculateStatus(t *testing.T) {
	progressingSince := func(reason string, ago time.Duration) []appsv1.DeploymentCondition {
		ts := metav1.NewTime(statusNow.Add(-ago))
		return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reason, LastUpdateTime: ts, LastTransitionTime: ts}}
	}
	cases := []struct {
		name          string
		paused        bool
		noDeadline    bool // progressDeadlineSeconds: MaxInt32
		before        appsv1.DeploymentStatus
		newRS         *skiffappsv1.ReplicaSet
		old           []*skiffappsv1.ReplicaSet
		created       bool
		wantAvailable string
		wantProgress  string
		// replicas, updated, ready, available, unavailable; unavailable
		// counts the pods the ReplicaSets want, surge included, as upstream.
		wantCounts [5]int32
	}{
		{name: "just created", newRS: testRS("new", 0, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 4, 4)}, created: true,
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "True/" + ReasonNewReplicaSetCreated, wantCounts: [5]int32{4, 0, 4, 4, 0}},
		{name: "progressing: more updated pods than before", before: appsv1.DeploymentStatus{Replicas: 4, AvailableReplicas: 4, Conditions: progressingSince(ReasonNewReplicaSetCreated, time.Minute)},
			newRS: testRS("new", 1, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 4, 4)},
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "True/" + ReasonReplicaSetUpdated, wantCounts: [5]int32{5, 1, 4, 4, 1}},
		{name: "complete", before: appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 3, Conditions: progressingSince(ReasonReplicaSetUpdated, time.Minute)},
			newRS: testRS("new", 4, 4, 4), old: []*skiffappsv1.ReplicaSet{testRS("old", 0, 0, 0)},
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "True/" + ReasonNewReplicaSetAvailable, wantCounts: [5]int32{4, 4, 4, 4, 0}},
		{name: "no progress for longer than the deadline", before: appsv1.DeploymentStatus{Replicas: 5, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: progressingSince(ReasonReplicaSetUpdated, 11*time.Minute)},
			newRS: testRS("new", 1, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 3, 3)},
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "False/" + ReasonProgressDeadlineExceeded, wantCounts: [5]int32{5, 1, 3, 3, 2}},
		{name: "no progress, deadline not reached", before: appsv1.DeploymentStatus{Replicas: 5, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, Conditions: progressingSince(ReasonReplicaSetUpdated, 9*time.Minute)},
			newRS: testRS("new", 1, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 3, 3)},
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "True/" + ReasonReplicaSetUpdated, wantCounts: [5]int32{5, 1, 3, 3, 2}},
		{name: "below minimum availability", newRS: testRS("new", 4, 4, 2), before: appsv1.DeploymentStatus{Conditions: progressingSince(ReasonReplicaSetUpdated, time.Second)},
			wantAvailable: "False/" + ReasonMinimumReplicasUnavailable, wantProgress: "True/" + ReasonReplicaSetUpdated, wantCounts: [5]int32{4, 4, 4, 2, 2}},
		{name: "paused", paused: true, newRS: testRS("new", 1, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 4, 4)},
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "Unknown/" + ReasonDeploymentPaused, wantCounts: [5]int32{5, 1, 4, 4, 1}},
		{name: "complete, then a pod replaced: not judged again, even past the deadline", before: appsv1.DeploymentStatus{Replicas: 4, UpdatedReplicas: 4, ReadyReplicas: 4, AvailableReplicas: 4, Conditions: progressingSince(ReasonNewReplicaSetAvailable, 11*time.Minute)},
			newRS:         testRS("new", 4, 4, 3),
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "True/" + ReasonNewReplicaSetAvailable, wantCounts: [5]int32{4, 4, 4, 3, 1}},
		{name: "no progress deadline: no Progressing condition", noDeadline: true, before: appsv1.DeploymentStatus{Conditions: progressingSince(ReasonReplicaSetUpdated, time.Minute)},
			newRS: testRS("new", 1, 0, 0), old: []*skiffappsv1.ReplicaSet{testRS("old", 4, 4, 4)}, created: true,
			wantAvailable: "True/" + ReasonMinimumReplicasAvailable, wantProgress: "none", wantCounts: [5]int32{5, 1, 4, 4, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &skiffappsv1.Deployment{Status: c.before}
			d.Spec.Replicas = ptr.To[int32](4)
			d.Spec.Paused = c.paused
			if c.noDeadline {
				d.Spec.ProgressDeadlineSeconds = ptr.To[int32](math.MaxInt32)
			}
			s := calculateStatus(d, c.newRS, c.old, Strategy{MaxSurge: 1, MaxUnavailable: 1}, c.created, statusNow)
			if got := conditionOf(&skiffappsv1.Deployment{Status: s}, appsv1.DeploymentAvailable); got != c.wantAvailable {
				t.Errorf("Available = %s, want %s", got, c.wantAvailable)
			}
			if got := conditionOf(&skiffappsv1.Deployment{Status: s}, appsv1.DeploymentProgressing); got != c.wantProgress {
				t.Errorf("Progressing = %s, want %s", got, c.wantProgress)
			}
			got := [5]int32{s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, s.UnavailableReplicas}
			if got != c.wantCounts {
				t.Errorf("replicas/updated/ready/available/unavailable = %v, want %v", got, c.wantCounts)
			}
		})
	}
}

func TestSetConditionKeepsTransitionTime(t *testing.T) {
	s := &appsv1.DeploymentStatus{}
	setCondition(s, condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, "A", "", statusNow))
	setCondition(s, condition(appsv1.DeploymentAvailable, corev1.ConditionTrue, "B", "", statusNow.Add(time.Hour)))
	c := getCondition(s, appsv1.DeploymentAvailable)
	if c.Reason != "B" || !c.LastTransitionTime.Time.Equal(statusNow) || !c.LastUpdateTime.Time.Equal(statusNow.Add(time.Hour)) {
		t.Errorf("same status, new reason: got %+v, want reason B with the first transition time", c)
	}
	if len(s.Conditions) != 1 {
		t.Errorf("%d conditions, want 1", len(s.Conditions))
	}
}

func TestReplicaFailureCondition(t *testing.T) {
	failing := func(name string, reason string) *skiffappsv1.ReplicaSet {
		rs := testRS(name, 2, 0, 0)
		ts := metav1.NewTime(statusNow)
		rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			Reason: reason, Message: "pods refused", LastTransitionTime: ts}}
		return rs
	}
	failed := appsv1.DeploymentCondition{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "Stale"}
	cases := []struct {
		name   string
		before []appsv1.DeploymentCondition
		newRS  *skiffappsv1.ReplicaSet
		old    []*skiffappsv1.ReplicaSet
		want   string
	}{
		{"the new ReplicaSet's failure first", nil, failing("new", "FailedCreate"), []*skiffappsv1.ReplicaSet{failing("old", "FailedDelete")}, "True/FailedCreate"},
		{"else an old one's", nil, testRS("new", 2, 2, 2), []*skiffappsv1.ReplicaSet{failing("old", "FailedDelete")}, "True/FailedDelete"},
		{"none left: the condition goes", []appsv1.DeploymentCondition{failed}, testRS("new", 2, 2, 2), nil, "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &skiffappsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: c.before}}
			d.Spec.Replicas = ptr.To[int32](2)
			s := calculateStatus(d, c.newRS, c.old, Strategy{MaxSurge: 1}, false, statusNow)
			if got := conditionOf(&skiffappsv1.Deployment{Status: s}, appsv1.DeploymentReplicaFailure); got != c.want {
				t.Errorf("ReplicaFailure = %s, want %s", got, c.want)
			}
		})
	}
}

func TestTerminatingReplicas(t *testing.T) {
	rs := func(observed int64, terminating *int32) *skiffappsv1.ReplicaSet {
		r := testRS("rs", 1, 1, 1)
		r.Status.ObservedGeneration, r.Status.TerminatingReplicas = observed, terminating
		return r
	}
	cases := []struct {
		name string
		rss  []*skiffappsv1.ReplicaSet
		want *int32
	}{
		{"summed", []*skiffappsv1.ReplicaSet{rs(1, ptr.To[int32](2)), rs(3, ptr.To[int32](1))}, ptr.To[int32](3)},
		{"a ReplicaSet not synced yet counts none", []*skiffappsv1.ReplicaSet{rs(1, ptr.To[int32](2)), rs(0, nil)}, ptr.To[int32](2)},
		{"one synced without a count: unknown", []*skiffappsv1.ReplicaSet{rs(1, ptr.To[int32](2)), rs(2, nil)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := terminatingReplicas(c.rss)
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Errorf("terminatingReplicas = %v, want %v", ptr.Deref(got, -1), ptr.Deref(c.want, -1))
			}
		})
	}
}
