package statefulset

import (
	"slices"
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

func TestOrdinalOf(t *testing.T) {
	set := &skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	for _, tc := range []struct {
		name string
		want int
		ok   bool
	}{
		{"web-0", 0, true},
		{"web-12", 12, true},
		{"web-012", 0, false}, // not a name the set gives
		{"web--1", 0, false},
		{"web-a", 0, false},
		{"web", 0, false},
		{"webx-1", 0, false},
		{"web-sub-1", 0, false},
	} {
		got, ok := ordinalOf(set, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ordinalOf(%q) = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHistoryToDelete(t *testing.T) {
	rev := func(name string, n int64) *appsv1.ControllerRevision {
		return &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: name}, Revision: n}
	}
	revs := []*appsv1.ControllerRevision{rev("d", 4), rev("a", 1), rev("c", 3), rev("b", 2), rev("e", 5)}
	for _, tc := range []struct {
		name  string
		limit *int32
		live  []string
		want  []string
	}{
		{"under the default limit", nil, []string{"e"}, nil},
		{"limit 1 keeps the newest dead one", ptr.To[int32](1), []string{"e"}, []string{"a", "b", "c"}},
		{"limit 0 keeps only the live ones", ptr.To[int32](0), []string{"e", "b"}, []string{"a", "c", "d"}},
		{"live ones are never deleted", ptr.To[int32](0), []string{"a", "b", "c", "d", "e"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := map[string]bool{}
			for _, n := range tc.live {
				live[n] = true
			}
			var got []string
			for _, r := range historyToDelete(slices.Clone(revs), tc.limit, live) {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("historyToDelete = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClaimOwners(t *testing.T) {
	set := &skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", UID: "set-uid"}}
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-2", UID: "pod-uid"}}
	policy := func(deleted, scaled appsv1.PersistentVolumeClaimRetentionPolicyType) *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy {
		return &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: deleted, WhenScaled: scaled}
	}
	const keep, del = appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	other := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "other"}
	for _, tc := range []struct {
		name     string
		policy   *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy
		replicas int
		existing []metav1.OwnerReference
		want     []string
		start    int32
	}{
		{"no policy: no owners", nil, 3, nil, nil, 0},
		{"Retain/Retain removes stale refs, keeps others", policy(keep, keep), 3,
			[]metav1.OwnerReference{setOwnerRef(set), podOwnerRef(pod), other}, []string{"ConfigMap/x"}, 0},
		{"whenDeleted Delete: the set", policy(del, keep), 3, nil, []string{"StatefulSet/db"}, 0},
		{"whenScaled Delete, ordinal kept: nothing", policy(keep, del), 3, nil, nil, 0},
		{"whenScaled Delete, ordinal condemned: the pod", policy(keep, del), 2, nil, []string{"Pod/db-2"}, 0},
		{"both Delete, condemned: both", policy(del, del), 1, nil, []string{"Pod/db-2", "StatefulSet/db"}, 0},
		{"scaled back up: the pod ref goes", policy(del, del), 3, []metav1.OwnerReference{setOwnerRef(set), podOwnerRef(pod)}, []string{"StatefulSet/db"}, 0},
		{"start moved above the ordinal: condemned", policy(keep, del), 3, nil, []string{"Pod/db-2"}, 3},
		{"start below the ordinal, in range: kept", policy(keep, del), 2, nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := set.DeepCopy()
			s.Spec.PersistentVolumeClaimRetentionPolicy = tc.policy
			if tc.start != 0 {
				s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: tc.start}
			}
			toSet, toPod := wantedClaimOwners(s, pod, 2, tc.replicas)
			var got []string
			for _, r := range withClaimOwners(tc.existing, s, pod, toSet, toPod) {
				got = append(got, r.Kind+"/"+r.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("owners %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewPod(t *testing.T) {
	set := &skiffappsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "uid"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db-svc",
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
				Spec: corev1.PodSpec{Volumes: []corev1.Volume{
					{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "cfg", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{
				{ObjectMeta: metav1.ObjectMeta{Name: "data"}}, {ObjectMeta: metav1.ObjectMeta{Name: "logs"}},
			},
		},
	}
	ref := metav1.OwnerReference{Name: "db", UID: "uid", Controller: ptr.To(true)}
	pod := newPod(set, 4, "db-abc", &set.Spec.Template, &ref)
	if pod.Name != "db-4" || pod.Namespace != "ns" || pod.Spec.Hostname != "db-4" || pod.Spec.Subdomain != "db-svc" {
		t.Errorf("pod %s/%s hostname %q subdomain %q", pod.Namespace, pod.Name, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	wantLabels := map[string]string{"app": "db", "statefulset.kubernetes.io/pod-name": "db-4", "apps.kubernetes.io/pod-index": "4", "controller-revision-hash": "db-abc"}
	for k, v := range wantLabels {
		if pod.Labels[k] != v {
			t.Errorf("label %s=%q, want %q", k, pod.Labels[k], v)
		}
	}
	if set.Spec.Template.Labels["controller-revision-hash"] != "" {
		t.Error("newPod changed the set's template")
	}
	var vols []string
	for _, v := range pod.Spec.Volumes {
		src := "emptyDir"
		if v.PersistentVolumeClaim != nil {
			src = v.PersistentVolumeClaim.ClaimName
		}
		vols = append(vols, v.Name+"="+src)
	}
	if want := []string{"data=data-db-4", "cfg=emptyDir", "logs=logs-db-4"}; !slices.Equal(vols, want) {
		t.Errorf("volumes %v, want %v (a claim replaces the template volume of its name)", vols, want)
	}
}

func TestCalculateStatus(t *testing.T) {
	now := time.Now()
	pod := func(rev string, ready, deleting bool) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"controller-revision-hash": rev}}}
		p.Status.Phase = corev1.PodRunning
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
		}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: now}
		}
		return p
	}
	readySince := func(rev string, since time.Time) *skiffcorev1.Pod {
		p := pod(rev, true, false)
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(since)
		return p
	}
	set := &skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 7}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), MinReadySeconds: 30}}
	for _, tc := range []struct {
		name string
		pods map[int]*skiffcorev1.Pod
		want appsv1.StatefulSetStatus
	}{
		// As upstream, replicas and readyReplicas count a terminating pod;
		// the revision counts do not.
		{"mid rollout", map[int]*skiffcorev1.Pod{0: pod("old", true, false), 1: pod("old", false, false), 2: pod("new", true, false), 3: pod("old", true, true)},
			appsv1.StatefulSetStatus{ObservedGeneration: 7, Replicas: 4, ReadyReplicas: 3, AvailableReplicas: 3, CurrentReplicas: 2, UpdatedReplicas: 1, CurrentRevision: "old", UpdateRevision: "new", CollisionCount: ptr.To[int32](0)}},
		{"rollout complete: current becomes update", map[int]*skiffcorev1.Pod{0: pod("new", true, false), 1: pod("new", true, false), 2: pod("new", true, false)},
			appsv1.StatefulSetStatus{ObservedGeneration: 7, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, CurrentReplicas: 3, UpdatedReplicas: 3, CurrentRevision: "new", UpdateRevision: "new", CollisionCount: ptr.To[int32](0)}},
		{"not complete while a terminating pod is left", map[int]*skiffcorev1.Pod{0: pod("new", true, false), 1: pod("new", true, false), 2: pod("new", true, false), 3: pod("old", true, true)},
			appsv1.StatefulSetStatus{ObservedGeneration: 7, Replicas: 4, ReadyReplicas: 4, AvailableReplicas: 4, CurrentReplicas: 0, UpdatedReplicas: 3, CurrentRevision: "old", UpdateRevision: "new", CollisionCount: ptr.To[int32](0)}},
		{"minReadySeconds: ready for less is not available", map[int]*skiffcorev1.Pod{0: pod("old", true, false), 1: readySince("old", now.Add(-5*time.Second)), 2: pod("old", false, false)},
			appsv1.StatefulSetStatus{ObservedGeneration: 7, Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 1, CurrentReplicas: 3, UpdatedReplicas: 0, CurrentRevision: "old", UpdateRevision: "new", CollisionCount: ptr.To[int32](0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := calculateStatus(set, tc.pods, "old", "new", now)
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("status\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
