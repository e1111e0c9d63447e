package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service gives a set of pods one stable virtual address. It mirrors core/v1
// Service: the control plane allocates its clusterIP and nodePorts and keeps
// its EndpointSlices, and every node agent load balances it in eBPF.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ssvc,categories=skiff
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Cluster-IP",type=string,JSONPath=`.spec.clusterIP`
// +kubebuilder:printcolumn:name="External-IP",type=string,JSONPath=`.status.loadBalancer.ingress[*].ip`
// +kubebuilder:printcolumn:name="Port(s)",type=string,JSONPath=`.spec.ports[*].port`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector`,priority=1
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the service's type, ports and selector, as in core/v1. The
	// cluster IP is set once, by the user at create or by skiff's allocator
	// right after, as upstream's apiserver refuses to change it; only a
	// change to type ExternalName clears it.
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.clusterIP) || oldSelf.clusterIP == '' || (has(self.type) && self.type == 'ExternalName') || (has(self.clusterIP) && self.clusterIP == oldSelf.clusterIP)",message="may not be changed once set",fieldPath=".clusterIP"
	// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'ExternalName' || has(self.externalName)",message="spec.externalName is required when type is ExternalName",fieldPath=".externalName"
	// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type == 'ExternalName' || (has(self.ports) && size(self.ports) > 0)",message="at least one port is required unless type is ExternalName",fieldPath=".ports"
	Spec corev1.ServiceSpec `json:"spec,omitempty"`

	// Status holds load balancer ingress and conditions, as in core/v1.
	Status corev1.ServiceStatus `json:"status,omitempty"`
}

// ServiceList is a list of Services.
//
// +kubebuilder:object:root=true
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Service `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Service{}, &ServiceList{})
}
