package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Pod is a group of containers that run together on one node. It mirrors
// core/v1 Pod field for field; skiff's scheduler sets spec.nodeName and that
// node's agent runs the containers and reports status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=spo,categories=skiff
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Restarts",type=string,JSONPath=`.status.containerStatuses[*].restartCount`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.podIP`,priority=1
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`,priority=1
// +kubebuilder:printcolumn:name="Nominated Node",type=string,JSONPath=`.status.nominatedNodeName`,priority=1
type Pod struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired behaviour of the pod, as in core/v1. A pod is
	// bound once: upstream's binding subresource refuses a second binding,
	// and this rule does the same for the scheduler's optimistic write.
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.nodeName) || oldSelf.nodeName == '' || (has(self.nodeName) && self.nodeName == oldSelf.nodeName)",message="may not be changed once set: the pod is already bound to a node",fieldPath=".nodeName"
	Spec corev1.PodSpec `json:"spec,omitempty"`

	// Status is the pod's most recently observed status, written by its node agent.
	Status corev1.PodStatus `json:"status,omitempty"`
}

// PodList is a list of Pods.
//
// +kubebuilder:object:root=true
type PodList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pod `json:"items"`
}

// PodTerminationFinalizer holds a bound pod's object until its node agent
// has stopped its containers. Upstream's apiserver delays a pod's deletion by
// its grace period; a custom resource is deleted at once, so skiff keeps the
// object with this finalizer instead. The scheduler adds it in the binding
// write, the node agent adds it to pods created with spec.nodeName already
// set, and the node agent removes it once nothing of the pod runs.
const PodTerminationFinalizer = "core.skiff.dev/termination"

func init() {
	SchemeBuilder.Register(&Pod{}, &PodList{})
}
