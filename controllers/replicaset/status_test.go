package replicaset

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

var statusNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// statusPod is a pod of the "web" template; readyFor < 0 means not ready.
func statusPod(readyFor time.Duration, labels map[string]string) *skiffcorev1.Pod {
	if labels == nil {
		labels = map[string]string{"app": "web", "tier": "front"}
	}
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	if readyFor >= 0 {
		p.Status.Conditions = []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(statusNow.Add(-readyFor)),
		}}
	}
	return p
}

func statusRS(minReady int32, conditions ...appsv1.ReplicaSetCondition) *skiffappsv1.ReplicaSet {
	rs := &skiffappsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 7},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To[int32](3),
			MinReadySeconds: minReady,
			Template:        corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}}},
		},
	}
	rs.Status.Conditions = conditions
	return rs
}

func TestCalculateStatus(t *testing.T) {
	failure := appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: reasonFailedCreate, Message: "old"}
	cases := []struct {
		name        string
		rs          *skiffappsv1.ReplicaSet
		pods        []*skiffcorev1.Pod
		terminating int
		err         error
		want        appsv1.ReplicaSetStatus
	}{
		{"counts replicas, ready, available, fully labeled",
			statusRS(0),
			[]*skiffcorev1.Pod{statusPod(-1, nil), statusPod(time.Second, nil), statusPod(time.Hour, map[string]string{"app": "web"})},
			2, nil,
			appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, TerminatingReplicas: ptr.To[int32](2), ObservedGeneration: 7}},
		{"minReadySeconds holds back pods ready for less",
			statusRS(10),
			[]*skiffcorev1.Pod{statusPod(5*time.Second, nil), statusPod(11*time.Second, nil), statusPod(10*time.Second, nil)},
			0, nil,
			appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 1, TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 7}},
		{"a failed creation sets ReplicaFailure",
			statusRS(0), nil, 0, &replicaFailure{reason: reasonFailedCreate, err: errors.New("denied")},
			appsv1.ReplicaSetStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 7, Conditions: []appsv1.ReplicaSetCondition{{
				Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: reasonFailedCreate, Message: "denied", LastTransitionTime: metav1.NewTime(statusNow)}}}},
		{"a failed deletion updates the message, keeping the transition time",
			statusRS(0, withTime(failure, statusNow.Add(-time.Hour))), nil, 0, &replicaFailure{reason: reasonFailedDelete, err: errors.New("gone wrong")},
			appsv1.ReplicaSetStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 7, Conditions: []appsv1.ReplicaSetCondition{{
				Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: reasonFailedDelete, Message: "gone wrong", LastTransitionTime: metav1.NewTime(statusNow.Add(-time.Hour))}}}},
		{"a sync without failure clears ReplicaFailure",
			statusRS(0, failure), nil, 0, nil,
			appsv1.ReplicaSetStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 7}},
		{"an error that is not a scaling failure leaves the condition alone",
			statusRS(0, failure), nil, 0, errors.New("cache trouble"),
			appsv1.ReplicaSetStatus{TerminatingReplicas: ptr.To[int32](0), ObservedGeneration: 7, Conditions: []appsv1.ReplicaSetCondition{failure}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := calculateStatus(tc.rs, tc.pods, tc.terminating, tc.err, statusNow)
			if !apiEqual(got, tc.want) {
				t.Fatalf("status\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func withTime(c appsv1.ReplicaSetCondition, at time.Time) appsv1.ReplicaSetCondition {
	c.LastTransitionTime = metav1.NewTime(at)
	return c
}

func TestNextAvailable(t *testing.T) {
	cases := []struct {
		name     string
		minReady int32
		pods     []*skiffcorev1.Pod
		want     time.Duration
		wantOK   bool
	}{
		{"no minReadySeconds: nothing to wait for", 0, []*skiffcorev1.Pod{statusPod(0, nil)}, 0, false},
		{"no ready pod: nothing to wait for", 10, []*skiffcorev1.Pod{statusPod(-1, nil)}, 0, false},
		{"all available: nothing to wait for", 10, []*skiffcorev1.Pod{statusPod(time.Minute, nil)}, 0, false},
		{"the soonest pod decides", 10, []*skiffcorev1.Pod{statusPod(2*time.Second, nil), statusPod(7*time.Second, nil), statusPod(time.Minute, nil)},
			3*time.Second + time.Millisecond, true},
		{"exactly at the delay: just after it", 10, []*skiffcorev1.Pod{statusPod(10*time.Second, nil)}, time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := nextAvailable(tc.pods, tc.minReady, statusNow)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("nextAvailable = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestNewPod(t *testing.T) {
	rs := statusRS(0)
	rs.Namespace = "shop"
	rs.Spec.Template.Annotations = map[string]string{"note": "x"}
	rs.Spec.Template.Finalizers = []string{"example.com/keep"}
	rs.Spec.Template.Spec.Containers = []corev1.Container{{Name: "web", Image: "nginx"}}
	ref := metav1.NewControllerRef(rs, skiffappsv1.GroupVersion.WithKind("ReplicaSet"))

	pod := newPod(rs, ref)
	switch {
	case pod.GenerateName != "web-" || pod.Name != "" || pod.Namespace != "shop":
		t.Errorf("name %q/%q in %q; want generateName web- in shop", pod.GenerateName, pod.Name, pod.Namespace)
	case pod.Labels["tier"] != "front" || pod.Annotations["note"] != "x" || len(pod.Finalizers) != 1:
		t.Errorf("metadata not from the template: %+v", pod.ObjectMeta)
	case len(pod.OwnerReferences) != 1 || !*pod.OwnerReferences[0].Controller || !*pod.OwnerReferences[0].BlockOwnerDeletion:
		t.Errorf("ownerReferences %+v; want one controller ref blocking deletion", pod.OwnerReferences)
	case pod.Spec.NodeName != "" || pod.Spec.Containers[0].Image != "nginx":
		t.Errorf("spec %+v; want the template's, without a node", pod.Spec)
	}
	pod.Labels["tier"] = "changed"
	pod.Spec.Containers[0].Image = "changed"
	if rs.Spec.Template.Labels["tier"] != "front" || rs.Spec.Template.Spec.Containers[0].Image != "nginx" {
		t.Error("the pod shares memory with the template")
	}
}

func apiEqual(a, b appsv1.ReplicaSetStatus) bool { return equality.Semantic.DeepEqual(a, b) }
