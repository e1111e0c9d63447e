package images

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestAfterFailureDoublesUpToFiveMinutes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var w pullWait
	found := false
	now := t0
	var delays []time.Duration
	for range 7 {
		w = afterFailure(w, found, now)
		found = true
		delays = append(delays, w.delay)
		now = w.retryAt()
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	if got := afterFailure(w, true, w.failed.Add(11*time.Minute)); got.delay != 10*time.Second {
		t.Errorf("after 11 idle minutes the delay is %s, want 10s: the back-off starts over", got.delay)
	}
}

func TestPullPolicyDefault(t *testing.T) {
	for _, c := range []struct {
		image  string
		policy corev1.PullPolicy
		want   corev1.PullPolicy
	}{
		{"busybox", "", corev1.PullAlways},
		{"busybox:latest", "", corev1.PullAlways},
		{"skiff.dev/test/echo:1.0", "", corev1.PullIfNotPresent},
		{"localhost:5000/echo", "", corev1.PullAlways},
		{"echo@sha256:" + strings.Repeat("a", 64), "", corev1.PullIfNotPresent},
		{"busybox:latest", corev1.PullNever, corev1.PullNever},
		{"busybox:1.0", corev1.PullAlways, corev1.PullAlways},
	} {
		if got := PullPolicy(c.image, c.policy); got != c.want {
			t.Errorf("PullPolicy(%q, %q) = %q, want %q", c.image, c.policy, got, c.want)
		}
	}
}

func TestShouldPull(t *testing.T) {
	for _, c := range []struct {
		policy     corev1.PullPolicy
		present    bool
		want       bool
		wantReason error
	}{
		{corev1.PullAlways, true, true, nil},
		{corev1.PullAlways, false, true, nil},
		{corev1.PullIfNotPresent, true, false, nil},
		{corev1.PullIfNotPresent, false, true, nil},
		{corev1.PullNever, true, false, nil},
		{corev1.PullNever, false, false, ErrImageNeverPull},
	} {
		got, err := shouldPull("x:1", c.policy, c.present)
		if got != c.want || !errors.Is(err, c.wantReason) || (c.wantReason == nil) != (err == nil) {
			t.Errorf("shouldPull(%s, present=%v) = %v, %v; want %v, %v", c.policy, c.present, got, err, c.want, c.wantReason)
		}
	}
	if _, err := shouldPull("x:1", "Sometimes", true); err == nil || !strings.Contains(err.Error(), "want Always, IfNotPresent or Never") {
		t.Errorf("unknown policy: err = %v", err)
	}
}
