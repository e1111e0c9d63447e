package v1

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelServiceName names the Service that an EndpointSlice belongs to, as
// upstream's kubernetes.io/service-name does.
const LabelServiceName = "kubernetes.io/service-name"

// EndpointSlice lists some of a Service's endpoints, with upstream's ready,
// serving and terminating conditions. It mirrors discovery.k8s.io/v1
// EndpointSlice; skiff serves it from core.skiff.dev because Services need it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=seps,categories=skiff
// +kubebuilder:printcolumn:name="AddressType",type=string,JSONPath=`.addressType`
// +kubebuilder:printcolumn:name="Ports",type=string,JSONPath=`.ports[*].port`
// +kubebuilder:printcolumn:name="Endpoints",type=string,JSONPath=`.endpoints[*].addresses[0]`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EndpointSlice struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// AddressType is the kind of address every endpoint carries: IPv4, IPv6 or FQDN.
	// +kubebuilder:validation:Enum=IPv4;IPv6;FQDN
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="addressType is immutable"
	AddressType discoveryv1.AddressType `json:"addressType"`

	// Endpoints are the backends in this slice.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	Endpoints []discoveryv1.Endpoint `json:"endpoints"`

	// Ports are the ports every endpoint in the slice exposes.
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Ports []discoveryv1.EndpointPort `json:"ports,omitempty"`
}

// EndpointSliceList is a list of EndpointSlices.
//
// +kubebuilder:object:root=true
type EndpointSliceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EndpointSlice `json:"items"`
}

func init() {
	SchemeBuilder.Register(&EndpointSlice{}, &EndpointSliceList{})
}
