package expectations

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestPodEventsWakeTheRightOwners(t *testing.T) {
	owner := schema.GroupVersionKind{Group: "apps.skiff.dev", Version: "v1", Kind: "ReplicaSet"}
	pod := func(rv, ownerName string, labels map[string]string, deleting bool) *skiffcorev1.Pod {
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "pod-uid", ResourceVersion: rv, Labels: labels}}
		if ownerName != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps.skiff.dev/v1", Kind: "ReplicaSet",
				Name: ownerName, UID: types.UID(ownerName), Controller: ptr.To(true)}}
		}
		if deleting {
			p.DeletionTimestamp = ptr.To(metav1.Now())
		}
		return p
	}
	web := map[string]string{"app": "web"}
	cases := []struct {
		name string
		send func(h PodEvents, q queue)
		want []string
	}{
		{"a created pod wakes its owner", func(h PodEvents, q queue) {
			h.Create(context.Background(), event.CreateEvent{Object: pod("1", "rs-a", web, false)}, q)
		}, []string{"rs-a"}},
		{"a created orphan wakes the owners that would adopt it", func(h PodEvents, q queue) {
			h.Create(context.Background(), event.CreateEvent{Object: pod("1", "", web, false)}, q)
		}, []string{"adopter"}},
		{"a pod taken over wakes both owners", func(h PodEvents, q queue) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod("1", "rs-a", web, false), ObjectNew: pod("2", "rs-b", web, false)}, q)
		}, []string{"rs-a", "rs-b"}},
		{"a released pod wakes its old owner and its adopters", func(h PodEvents, q queue) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod("1", "rs-a", web, false), ObjectNew: pod("2", "", web, false)}, q)
		}, []string{"adopter", "rs-a"}},
		{"a resync with no change wakes no one", func(h PodEvents, q queue) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod("1", "rs-a", web, false), ObjectNew: pod("1", "rs-a", web, false)}, q)
		}, nil},
		{"a pod being deleted wakes its owner", func(h PodEvents, q queue) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: pod("1", "rs-a", web, false), ObjectNew: pod("2", "rs-a", web, true)}, q)
		}, []string{"rs-a"}},
		{"a pod of another kind's controller is ignored", func(h PodEvents, q queue) {
			p := pod("1", "rs-a", web, false)
			p.OwnerReferences[0].Kind = "StatefulSet"
			h.Delete(context.Background(), event.DeleteEvent{Object: p}, q)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
			defer q.ShutDown()
			h := PodEvents{Owner: owner, Expectations: New(clocktesting.NewFakeClock(time.Now())),
				Adopters: func(context.Context, string, map[string]string) []string { return []string{"adopter"} }}
			tc.send(h, q)
			var got []string
			for q.Len() > 0 {
				item, _ := q.Get()
				got = append(got, item.Name)
				q.Done(item)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("woke %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPodEventsKeepTheExpectations(t *testing.T) {
	e := New(clocktesting.NewFakeClock(time.Now()))
	h := PodEvents{Owner: schema.GroupVersionKind{Group: "apps.skiff.dev", Version: "v1", Kind: "ReplicaSet"}, Expectations: e,
		Adopters: func(context.Context, string, map[string]string) []string { return nil }}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	owned := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "p1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps.skiff.dev/v1", Kind: "ReplicaSet", Name: "rs", UID: "rs", Controller: ptr.To(true)}}}}

	e.Expect("rs", 1, nil)
	h.Create(context.Background(), event.CreateEvent{Object: owned}, q)
	if !e.Satisfied("rs") {
		t.Error("the creation of an owned pod was not observed")
	}
	e.Expect("rs", 0, []types.UID{"p1"})
	h.Delete(context.Background(), event.DeleteEvent{Object: owned}, q)
	if !e.Satisfied("rs") {
		t.Error("the deletion of an owned pod was not observed")
	}
}
