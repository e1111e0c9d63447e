package statefulset

import (
	"slices"
	"testing"
)

func TestDecide(t *testing.T) {
	h := slot{state: healthy, updated: true}
	old := slot{state: healthy}
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
