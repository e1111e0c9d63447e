package scheduler

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func TestResolvePriority(t *testing.T) {
	never := corev1.PreemptNever
	class := func(name string, value int32, global bool, policy *corev1.PreemptionPolicy) *schedulingv1.PriorityClass {
		return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: global, PreemptionPolicy: policy}
	}
	withClass := func(name string) func(*skiffcorev1.Pod) {
		return func(p *skiffcorev1.Pod) { p.Spec.PriorityClassName = name }
	}
	cases := []struct {
		name      string
		classes   []*schedulingv1.PriorityClass
		pod       *skiffcorev1.Pod
		want      int32
		wantNever bool
	}{
		{"nothing", nil, pod("p", "", ""), 0, false},
		{"spec.priority wins", []*schedulingv1.PriorityClass{class("high", 1000, false, nil)}, pod("p", "", "", withClass("high"), withPriority(7)), 7, false},
		{"from the class", []*schedulingv1.PriorityClass{class("high", 1000, false, &never)}, pod("p", "", "", withClass("high")), 1000, true},
		{"global default", []*schedulingv1.PriorityClass{class("high", 1000, false, nil), class("default", 50, true, nil)}, pod("p", "", ""), 50, false},
		{"named class over the default", []*schedulingv1.PriorityClass{class("high", 1000, false, nil), class("default", 50, true, nil)}, pod("p", "", "", withClass("high")), 1000, false},
		{"unknown class", nil, pod("p", "", "", withClass("missing")), 0, false},
		{"pod's preemption policy", nil, pod("p", "", "", func(p *skiffcorev1.Pod) { p.Spec.PreemptionPolicy = &never }), 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pcs := newPriorityClasses()
			for _, c := range tc.classes {
				pcs.set(c)
			}
			got, gotNever := pcs.resolve(tc.pod)
			if got != tc.want || gotNever != tc.wantNever {
				t.Fatalf("got %d (never %v), want %d (never %v)", got, gotNever, tc.want, tc.wantNever)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{}, ""},
		{Config{Scoring: MostAllocated, PercentageOfNodesToScore: 100, BindWorkers: 4}, ""},
		{Config{Scoring: "Random"}, `must be LeastAllocated or MostAllocated, got "Random"`},
		{Config{PercentageOfNodesToScore: 101}, "must be 0 (adaptive) to 100, got 101"},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		err := cfg.validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.wantErr == "" && (cfg.Scoring == "" || cfg.BindWorkers <= 0):
			t.Errorf("%+v: defaults not filled: %+v", tc.cfg, cfg)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.wantErr)
		}
	}
}
