package podutil

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestIsActive(t *testing.T) {
	now := metav1.Now()
	cases := []struct {
		name  string
		phase corev1.PodPhase
		gone  *metav1.Time
		want  bool
	}{
		{"pending", corev1.PodPending, nil, true},
		{"running", corev1.PodRunning, nil, true},
		{"succeeded", corev1.PodSucceeded, nil, false},
		{"failed", corev1.PodFailed, nil, false},
		{"terminating", corev1.PodRunning, &now, false},
	}
	for _, tc := range cases {
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: tc.gone}}
		p.Status.Phase = tc.phase
		if got := IsActive(p); got != tc.want {
			t.Errorf("%s: IsActive = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsAvailable(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	readySince := func(ago time.Duration) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now.Add(-ago))}}
		return p
	}
	cases := []struct {
		name     string
		pod      *skiffcorev1.Pod
		minReady int32
		want     bool
	}{
		{"not ready", &skiffcorev1.Pod{}, 0, false},
		{"ready, no minReadySeconds", readySince(0), 0, true},
		{"ready for less than minReadySeconds", readySince(5 * time.Second), 10, false},
		{"ready for longer than minReadySeconds", readySince(11 * time.Second), 10, true},
	}
	for _, tc := range cases {
		if got := IsAvailable(tc.pod, tc.minReady, now); got != tc.want {
			t.Errorf("%s: IsAvailable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetConditionMovesTransitionTimeOnlyOnChange(t *testing.T) {
	var status corev1.PodStatus
	long := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if !SetCondition(&status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: long}) {
		t.Fatal("adding a condition reported no change")
	}
	if SetCondition(&status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse}) {
		t.Error("setting the same condition again reported a change")
	}
	if !SetCondition(&status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}) {
		t.Error("a new reason reported no change")
	}
	if got := Condition(&status, corev1.PodReady).LastTransitionTime; !got.Equal(&long) {
		t.Errorf("a new reason with the same status moved the transition time to %v", got)
	}
	SetCondition(&status, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue})
	c := Condition(&status, corev1.PodReady)
	if c.Status != corev1.ConditionTrue || c.LastTransitionTime.Equal(&long) {
		t.Errorf("a status change left %+v", c)
	}
	if len(status.Conditions) != 1 {
		t.Errorf("conditions = %d, want 1", len(status.Conditions))
	}
}
