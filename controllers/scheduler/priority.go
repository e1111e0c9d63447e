package scheduler

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// priorityClasses resolves pod priorities the way upstream's Priority
// admission plugin does, because skiff's pods are custom resources that
// no admission plugin sees: spec.priority if set, else the value of
// spec.priorityClassName, else the global default class, else 0.
type priorityClasses struct {
	mu      sync.RWMutex
	classes map[string]*schedulingv1.PriorityClass
}

func newPriorityClasses() *priorityClasses {
	return &priorityClasses{classes: map[string]*schedulingv1.PriorityClass{}}
}

func (p *priorityClasses) set(pc *schedulingv1.PriorityClass) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.classes[pc.Name] = pc
}

func (p *priorityClasses) remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.classes, name)
}

// resolve returns the pod's priority and whether its preemption policy is
// Never.
func (p *priorityClasses) resolve(pod *skiffcorev1.Pod) (int32, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var class *schedulingv1.PriorityClass
	if name := pod.Spec.PriorityClassName; name != "" {
		class = p.classes[name]
	} else {
		for _, pc := range p.classes {
			if pc.GlobalDefault {
				class = pc
				break
			}
		}
	}
	var priority int32
	var policy *corev1.PreemptionPolicy
	if class != nil {
		priority, policy = class.Value, class.PreemptionPolicy
	}
	if pod.Spec.Priority != nil {
		priority = *pod.Spec.Priority
	}
	if pod.Spec.PreemptionPolicy != nil {
		policy = pod.Spec.PreemptionPolicy
	}
	return priority, policy != nil && *policy == corev1.PreemptNever
}
