package statefulset

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	"skiff.dev/skiff/internal/testenv"
)

// testMinReadySeconds: with minReadySeconds, the status counts a ready pod
// as available only after it, the next ordinal is created only once the
// previous one is available, and the rolling update waits the same way.
// Nothing but the clock changes when a pod becomes available: the set must
// requeue itself for that moment.
func testMinReadySeconds(t *testing.T) {
	const minReady = 4
	ns := namespace(t)
	tl := watchTimeline(t, ns)
	set := newSet(t, ns, "slow", 2, func(s *skiffappsv1.StatefulSet) { s.Spec.MinReadySeconds = minReady })

	// The status shows slow-0 ready but not yet available.
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool { return s.ReadyReplicas == 1 && s.AvailableReplicas == 0 })
	waitReady(t, ns, "slow", 2)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool { return s.ReadyReplicas == 2 && s.AvailableReplicas == 2 })
	first, err := tl.incarnation("slow-0", "nginx:1.27")
	if err != nil {
		t.Fatal(err)
	}
	second, err := tl.incarnation("slow-1", "nginx:1.27")
	if err != nil {
		t.Fatal(err)
	}
	checkWaited(t, "slow-1 created", second.created, "slow-0 ready", first.readySince, minReady)

	// The rollout: slow-1 is replaced, then slow-0 once the new slow-1
	// is available.
	old := set.Status.UpdateRevision
	setImage(t, set, "nginx:1.28")
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.UpdateRevision != old && s.UpdatedReplicas == 2 && s.AvailableReplicas == 2 && s.CurrentRevision == s.UpdateRevision
	})
	newSecond, err := tl.incarnation("slow-1", "nginx:1.28")
	if err != nil {
		t.Fatal(err)
	}
	first, err = tl.incarnation("slow-0", "nginx:1.27")
	if err != nil {
		t.Fatal(err)
	}
	checkWaited(t, "old slow-0 deleted", first.deleting, "new slow-1 ready", newSecond.readySince, minReady)
}

// checkWaited checks that after came minReady seconds after before (both
// in whole seconds), and not much later: the set requeued itself instead
// of waiting for an unrelated event.
func checkWaited(t *testing.T, afterWhat string, after time.Time, beforeWhat string, before time.Time, minReady int) {
	t.Helper()
	gap := after.Sub(before)
	if before.IsZero() || after.IsZero() || gap < time.Duration(minReady)*time.Second || gap > time.Duration(minReady)*time.Second+20*time.Second {
		t.Errorf("%s at %s, %s at %s: %s apart, want %ds or a little more", afterWhat, after, beforeWhat, before, gap, minReady)
	}
}

// testMaxUnavailable: a rollout with maxUnavailable 50% of 4 replaces two
// pods at a time, from the highest ordinal, never has more than two of the
// wanted pods down, and stops at the partition.
func testMaxUnavailable(t *testing.T) {
	ns := namespace(t)
	set := newSet(t, ns, "wide", 4, func(s *skiffappsv1.StatefulSet) {
		s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
			Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{
				Partition:      ptr.To[int32](1),
				MaxUnavailable: ptr.To(intstr.FromString("50%")),
			},
		}
	})
	waitReady(t, ns, "wide", 4)
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool { return s.ReadyReplicas == 4 })
	tl := watchTimeline(t, ns)

	setImage(t, set, "nginx:1.28")
	waitStatus(t, set, func(s appsv1.StatefulSetStatus) bool {
		return s.UpdateRevision != s.CurrentRevision && s.UpdatedReplicas == 3 && s.CurrentReplicas == 1 && s.ReadyReplicas == 4
	})
	testenv.Eventually(t, timeout, func() error {
		for i, p := range waitReady(t, ns, "wide", 4) {
			want := "nginx:1.28"
			if i < 1 {
				want = "nginx:1.27"
			}
			if got := p.Spec.Containers[0].Image; got != want {
				return fmt.Errorf("pod %s runs %s, want %s", p.Name, got, want)
			}
		}
		return nil
	})

	wanted := []string{"wide-0", "wide-1", "wide-2", "wide-3"}
	if most := tl.mostUnavailable(wanted); most != 2 {
		t.Errorf("at most %d of the pods were down at once, want 2 (maxUnavailable 50%% of 4)", most)
	}
	// wide-3 and wide-2 went together, before either came back.
	goneAt := func(name string) int {
		return tl.order(func(s step) bool { return s.name == name && s.gone })
	}
	backAt := func(name string) int {
		return tl.order(func(s step) bool { return s.name == name && s.ready && s.image == "nginx:1.28" })
	}
	g3, g2, g1 := goneAt("wide-3"), goneAt("wide-2"), goneAt("wide-1")
	b3, b2 := backAt("wide-3"), backAt("wide-2")
	if g3 < 0 || g2 < 0 || g1 < 0 || b3 < 0 || b2 < 0 || g2 > b3 || g2 > b2 || g3 > g2 || g1 < b2 || g1 < b3 {
		t.Errorf("events: wide-3 gone at %d, wide-2 gone at %d, wide-3 back at %d, wide-2 back at %d, wide-1 gone at %d; "+
			"want wide-3 and wide-2 deleted (highest first) before either came back, and wide-1 after both", g3, g2, b3, b2, g1)
	}
	if at := goneAt("wide-0"); at >= 0 {
		t.Errorf("wide-0, below the partition, was deleted (event %d)", at)
	}
}
