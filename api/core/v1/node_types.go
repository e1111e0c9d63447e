package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node is a machine that runs pods. It mirrors core/v1 Node: skiff's node
// agent registers it and keeps its status, and the control plane allocates
// its podCIDR and watches its heartbeat.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sno,categories=skiff
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Unschedulable",type=boolean,JSONPath=`.spec.unschedulable`,description="true while the node is cordoned"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.nodeInfo.kubeletVersion`
// +kubebuilder:printcolumn:name="Internal-IP",type=string,JSONPath=`.status.addresses[?(@.type=="InternalIP")].address`,priority=1
// +kubebuilder:printcolumn:name="OS-Image",type=string,JSONPath=`.status.nodeInfo.osImage`,priority=1
// +kubebuilder:printcolumn:name="Kernel-Version",type=string,JSONPath=`.status.nodeInfo.kernelVersion`,priority=1
// +kubebuilder:printcolumn:name="Container-Runtime",type=string,JSONPath=`.status.nodeInfo.containerRuntimeVersion`,priority=1
type Node struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the node's podCIDR, taints and cordon flag, as in core/v1.
	Spec corev1.NodeSpec `json:"spec,omitempty"`

	// Status is the node's capacity, conditions and addresses, kept by its agent.
	Status corev1.NodeStatus `json:"status,omitempty"`
}

// NodeList is a list of Nodes.
//
// +kubebuilder:object:root=true
type NodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Node `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Node{}, &NodeList{})
}
