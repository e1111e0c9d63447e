package job

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
)

func TestMatchSuccessPolicy(t *testing.T) {
	rule := func(indexes *string, count *int32) batchv1.SuccessPolicyRule {
		return batchv1.SuccessPolicyRule{SucceededIndexes: indexes, SucceededCount: count}
	}
	cases := []struct {
		name      string
		rules     []batchv1.SuccessPolicyRule
		completed indexSet
		want      bool
	}{
		{"all listed indexes done", []batchv1.SuccessPolicyRule{rule(ptr.To("0,2"), nil)}, indexSet{0: true, 2: true}, true},
		{"a listed index missing", []batchv1.SuccessPolicyRule{rule(ptr.To("0-2"), nil)}, indexSet{0: true, 2: true}, false},
		{"count among the listed", []batchv1.SuccessPolicyRule{rule(ptr.To("1-3"), ptr.To[int32](2))}, indexSet{0: true, 1: true, 3: true}, true},
		{"count among the listed not reached", []batchv1.SuccessPolicyRule{rule(ptr.To("1-3"), ptr.To[int32](2))}, indexSet{0: true, 1: true}, false},
		{"count alone", []batchv1.SuccessPolicyRule{rule(nil, ptr.To[int32](2))}, indexSet{0: true, 4: true}, true},
		{"second rule matches", []batchv1.SuccessPolicyRule{rule(ptr.To("3"), nil), rule(nil, ptr.To[int32](1))}, indexSet{0: true}, true},
	}
	for _, tc := range cases {
		if _, got := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tc.rules}, tc.completed, 5); got != tc.want {
			t.Errorf("%s: matched = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, got := matchSuccessPolicy(nil, indexSet{0: true}, 5); got {
		t.Error("no policy matched")
	}
}
