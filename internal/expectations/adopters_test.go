package expectations

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

func TestMatchingOwners(t *testing.T) {
	set := func(name string, selector *metav1.LabelSelector) client.Object {
		s := &skiffappsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name}}
		s.Spec.Selector = selector
		return s
	}
	owners := []client.Object{
		set("web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}),
		set("web-canary", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "track": "canary"}}),
		set("not-db", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"db"}}}}),
		set("everything", &metav1.LabelSelector{}),
		set("none", nil),
		set("invalid", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}),
	}
	selectorOf := func(o client.Object) *metav1.LabelSelector { return o.(*skiffappsv1.StatefulSet).Spec.Selector }
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   []string
	}{
		{"the selectors that match", map[string]string{"app": "web"}, []string{"web", "not-db"}},
		{"every matching selector", map[string]string{"app": "web", "track": "canary"}, []string{"web", "web-canary", "not-db"}},
		{"empty, missing and invalid selectors adopt nothing", map[string]string{"app": "db"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchingOwners(owners, selectorOf, tc.labels); !slices.Equal(got, tc.want) {
				t.Errorf("matchingOwners(%v) = %v, want %v", tc.labels, got, tc.want)
			}
		})
	}
}
