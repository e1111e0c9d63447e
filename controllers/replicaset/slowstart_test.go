package replicaset

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

func TestBatchSizes(t *testing.T) {
	cases := []struct {
		count, initial int
		want           []int
	}{
		{0, 1, nil},
		{1, 1, []int{1}},
		{3, 1, []int{1, 2}},
		{10, 1, []int{1, 2, 4, 3}},
		{50, 1, []int{1, 2, 4, 8, 16, 19}},
		{500, 1, []int{1, 2, 4, 8, 16, 32, 64, 128, 245}},
		{7, 2, []int{2, 4, 1}},
		{3, 0, []int{1, 2}},
	}
	for _, tc := range cases {
		if got := batchSizes(tc.count, tc.initial); !slices.Equal(got, tc.want) {
			t.Errorf("batchSizes(%d, %d) = %v, want %v", tc.count, tc.initial, got, tc.want)
		}
	}
}

func TestSlowStartBatch(t *testing.T) {
	boom := errors.New("refused")
	cases := []struct {
		name          string
		count         int
		failFrom      int // calls numbered from 1 fail from this one on; 0: none fails
		wantCalls     int
		wantSuccesses int
		wantErr       bool
	}{
		{"all succeed", 10, 0, 10, 10, false},
		{"the first call fails: nothing more is tried", 10, 1, 1, 0, true},
		{"a failure in the third batch stops after that batch", 10, 5, 7, 4, true},
		{"nothing to do", 0, 0, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			successes, err := slowStartBatch(tc.count, 1, func() error {
				if n := calls.Add(1); tc.failFrom > 0 && int(n) >= tc.failFrom {
					return boom
				}
				return nil
			})
			if int(calls.Load()) != tc.wantCalls || successes != tc.wantSuccesses || (err != nil) != tc.wantErr {
				t.Fatalf("calls=%d successes=%d err=%v; want calls=%d successes=%d error=%v",
					calls.Load(), successes, err, tc.wantCalls, tc.wantSuccesses, tc.wantErr)
			}
		})
	}
}
