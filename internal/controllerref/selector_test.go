package controllerref

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// reasons records the reasons of the Events it is given.
type reasons []string

func (r *reasons) Eventf(_, _ runtime.Object, _, reason, _, _ string, _ ...interface{}) {
	*r = append(*r, reason)
}

func TestSelector(t *testing.T) {
	cases := []struct {
		name string
		ls   *metav1.LabelSelector
		ok   bool
	}{
		{"labels", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}, true},
		{"empty selects everything", &metav1.LabelSelector{}, false},
		{"missing selects nothing, as upstream", nil, true},
		{"bad operator", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got reasons
			sel, ok := Selector(&got, &corev1.Pod{}, tc.ls)
			if ok != tc.ok || (ok && sel == nil) {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if tc.ls == nil && sel.Matches(labels.Set{"app": "web"}) {
				t.Errorf("a missing selector matched a pod")
			}
			if want := map[bool]int{true: 0, false: 1}[tc.ok]; len(got) != want || (want == 1 && got[0] != "InvalidSelector") {
				t.Errorf("events %v, want %d InvalidSelector", got, want)
			}
		})
	}
}
