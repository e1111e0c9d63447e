package statefulset

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestDecide(t *testing.T) {
	h := slot{state: available, updated: true}
	old := slot{state: available}
	a := h
	settling := slot{state: ready, updated: true}
	starting1 := slot{state: starting, updated: true}
	oldDown := slot{state: starting}
	for _, tc := range []struct {
		name               string
		in                 planInput
		wantCreate, wantDe []int
	}{
		{name: "ordered: empty set creates ordinal 0 only",
			in: planInput{replicas: 3}, wantCreate: []int{0}},
		{name: "ordered: waits for ordinal 0 to be ready",
			in: planInput{replicas: 3, slots: map[int]slot{0: {state: starting, updated: true}}}},
		{name: "ordered: creates the next ordinal once the lower ones are ready",
			in: planInput{replicas: 3, slots: map[int]slot{0: h}}, wantCreate: []int{1}},
		{name: "ordered: fills a hole left by a deleted pod",
			in: planInput{replicas: 3, slots: map[int]slot{0: h, 2: h}}, wantCreate: []int{1}},
		{name: "ordered: waits for a terminating pod to go before its replacement",
			in: planInput{replicas: 2, slots: map[int]slot{0: {state: terminating}, 1: h}}},
		{name: "ordered: deletes a failed pod to replace it",
			in: planInput{replicas: 2, slots: map[int]slot{0: h, 1: {state: finished, updated: true}}}, wantDe: []int{1}},
		{name: "ordered: scale down deletes the highest ordinal first",
			in: planInput{replicas: 1, slots: map[int]slot{0: h, 1: h, 2: h}}, wantDe: []int{2}},
		{name: "ordered: scale down waits for the highest to terminate",
			in: planInput{replicas: 1, slots: map[int]slot{0: h, 1: h, 2: {state: terminating}}}},
		{name: "ordered: scale down waits while a kept pod is not ready",
			in: planInput{replicas: 1, slots: map[int]slot{0: {state: starting, updated: true}, 1: h}}},
		{name: "parallel: creates every missing ordinal at once",
			in: planInput{replicas: 3, parallel: true}, wantCreate: []int{0, 1, 2}},
		{name: "parallel: creates past a pod that is not ready",
			in: planInput{replicas: 3, parallel: true, slots: map[int]slot{0: {state: starting, updated: true}}}, wantCreate: []int{1, 2}},
		{name: "parallel: deletes every condemned pod at once, highest first",
			in: planInput{replicas: 1, parallel: true, slots: map[int]slot{0: h, 1: h, 2: h}}, wantDe: []int{2, 1}},
		{name: "rolling update: the highest outdated ordinal goes first",
			in: planInput{replicas: 3, slots: map[int]slot{0: old, 1: old, 2: old}}, wantDe: []int{2}},
		{name: "rolling update: one at a time, after the updated ones are ready",
			in: planInput{replicas: 3, slots: map[int]slot{0: old, 1: old, 2: {state: starting, updated: true}}}},
		{name: "rolling update: continues down once the updated pod is ready",
			in: planInput{replicas: 3, slots: map[int]slot{0: old, 1: old, 2: h}}, wantDe: []int{1}},
		{name: "rolling update: ordinals below the partition stay",
			in: planInput{replicas: 3, partition: 2, slots: map[int]slot{0: old, 1: old, 2: h}}},
		{name: "OnDelete: outdated pods stay",
			in: planInput{replicas: 2, onDelete: true, slots: map[int]slot{0: old, 1: old}}},
		{name: "minReadySeconds: ordered creation waits for the lower ordinal to be available, not merely ready",
			in: planInput{replicas: 3, slots: map[int]slot{0: settling}}},
		{name: "minReadySeconds: the rollout waits for the updated pod to be available",
			in: planInput{replicas: 3, slots: map[int]slot{0: old, 1: old, 2: settling}}},
		{name: "minReadySeconds: ordered scale down waits for the kept pods to be available",
			in: planInput{replicas: 1, slots: map[int]slot{0: settling, 1: a}}},
		{name: "ordered scale down: a broken condemned pod above a broken lower one waits",
			in: planInput{replicas: 1, slots: map[int]slot{0: a, 1: starting1, 2: starting1}}},
		{name: "ordered scale down: the lowest broken condemned pod may go",
			in: planInput{replicas: 1, slots: map[int]slot{0: a, 1: a, 2: starting1}}, wantDe: []int{2}},
		{name: "maxUnavailable 2: two outdated pods at once, highest first",
			in: planInput{replicas: 4, maxUnavailable: 2, slots: map[int]slot{0: old, 1: old, 2: old, 3: old}}, wantDe: []int{3, 2}},
		{name: "maxUnavailable 2: the partition still holds",
			in: planInput{replicas: 5, maxUnavailable: 2, partition: 4, slots: map[int]slot{0: old, 1: old, 2: old, 3: old, 4: old}}, wantDe: []int{4}},
		{name: "maxUnavailable 2, ordered: the recreated pods come back one by one first",
			in: planInput{replicas: 4, maxUnavailable: 2, slots: map[int]slot{0: old, 1: old, 3: a}}, wantCreate: []int{2}},
		{name: "maxUnavailable 3, parallel: an updated pod still starting uses up one of the budget",
			in: planInput{replicas: 4, parallel: true, maxUnavailable: 3, slots: map[int]slot{0: old, 1: old, 2: old, 3: starting1}}, wantDe: []int{2, 1}},
		{name: "maxUnavailable 1, parallel: outdated pods that are down anyway go, beyond the budget",
			in: planInput{replicas: 4, parallel: true, maxUnavailable: 1, slots: map[int]slot{0: old, 1: oldDown, 2: old, 3: oldDown}}, wantDe: []int{3, 1}},
		{name: "maxUnavailable 1, parallel: no budget left, nothing outdated down",
			in: planInput{replicas: 3, parallel: true, maxUnavailable: 1, slots: map[int]slot{0: old, 1: old, 2: starting1}}},
		{name: "parallel: a finished pod is replaced, and not deleted twice by the rollout",
			in: planInput{replicas: 2, parallel: true, slots: map[int]slot{0: {state: finished}, 1: old}}, wantDe: []int{0}},
		{name: "ordinals.start: the first pod is the start ordinal",
			in: planInput{start: 5, replicas: 2}, wantCreate: []int{5}},
		{name: "ordinals.start, parallel: every ordinal from start",
			in: planInput{start: 5, replicas: 2, parallel: true}, wantCreate: []int{5, 6}},
		{name: "ordinals.start moved up: the new ordinals come first",
			in: planInput{start: 2, replicas: 3, slots: map[int]slot{0: a, 1: a, 2: a}}, wantCreate: []int{3}},
		{name: "ordinals.start moved up: then the ordinals below start go, highest first",
			in: planInput{start: 2, replicas: 3, slots: map[int]slot{0: a, 1: a, 2: a, 3: a, 4: a}}, wantDe: []int{1}},
		{name: "ordinals.start moved up: one at a time",
			in: planInput{start: 2, replicas: 3, slots: map[int]slot{0: a, 1: {state: terminating}, 2: a, 3: a, 4: a}}},
		{name: "ordinals.start: the partition counts from start",
			in: planInput{start: 3, replicas: 3, partition: 2, slots: map[int]slot{3: old, 4: old, 5: old}}, wantDe: []int{5}},
		{name: "a negative partition counts as 0",
			in: planInput{replicas: 2, partition: -1, slots: map[int]slot{0: old, 1: old}}, wantDe: []int{1}},
		{name: "steady: nothing to do",
			in: planInput{replicas: 2, slots: map[int]slot{0: h, 1: h}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decide(tc.in)
			if !slices.Equal(got.create, tc.wantCreate) || !slices.Equal(got.delete, tc.wantDe) {
				t.Errorf("decide() = create %v delete %v, want create %v delete %v", got.create, got.delete, tc.wantCreate, tc.wantDe)
			}
		})
	}
}

func TestMaxUnavailableOf(t *testing.T) {
	rolling := func(v *intstr.IntOrString) appsv1.StatefulSetUpdateStrategy {
		return appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: v}}
	}
	for _, tc := range []struct {
		name     string
		strategy appsv1.StatefulSetUpdateStrategy
		replicas int
		want     int
		wantErr  bool
	}{
		{"unset strategy: 1", appsv1.StatefulSetUpdateStrategy{}, 5, 1, false},
		{"unset maxUnavailable: 1", rolling(nil), 5, 1, false},
		{"an integer as it is", rolling(ptr.To(intstr.FromInt32(3))), 5, 3, false},
		{"a percentage rounds down", rolling(ptr.To(intstr.FromString("50%"))), 5, 2, false},
		{"never below 1", rolling(ptr.To(intstr.FromString("10%"))), 5, 1, false},
		{"not a percentage", rolling(ptr.To(intstr.FromString("half"))), 5, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := maxUnavailableOf(tc.strategy, tc.replicas)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("maxUnavailableOf = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
