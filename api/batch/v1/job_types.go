package v1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Job runs pods until a number of them succeed. It mirrors batch/v1 Job,
// with completions, parallelism, backoff, indexed completion and failure
// policies.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sjob,categories=skiff
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.status=="True")].type`
// +kubebuilder:printcolumn:name="Completions",type=integer,JSONPath=`.spec.completions`
// +kubebuilder:printcolumn:name="Succeeded",type=integer,JSONPath=`.status.succeeded`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.template.spec.containers[*].image`,priority=1
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector`,priority=1
type Job struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired behaviour of the job, field for field as in batch/v1.
	// +kubebuilder:validation:XValidation:rule="self.template.spec.restartPolicy in ['OnFailure', 'Never']",message="Unsupported value: a Job's pods may only use restartPolicy \"OnFailure\" or \"Never\"",fieldPath=".template.spec.restartPolicy"
	// +kubebuilder:validation:XValidation:rule="!has(self.parallelism) || self.parallelism >= 0",message="must be greater than or equal to 0",fieldPath=".parallelism"
	// +kubebuilder:validation:XValidation:rule="!has(self.completions) || self.completions >= 0",message="must be greater than or equal to 0",fieldPath=".completions"
	// +kubebuilder:validation:XValidation:rule="!has(self.backoffLimit) || self.backoffLimit >= 0",message="must be greater than or equal to 0",fieldPath=".backoffLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.activeDeadlineSeconds) || self.activeDeadlineSeconds > 0",message="must be greater than 0",fieldPath=".activeDeadlineSeconds"
	// +kubebuilder:validation:XValidation:rule="!has(self.completionMode) || self.completionMode != 'Indexed' || has(self.completions)",message="Required value: when completionMode is Indexed",fieldPath=".completions"
	// +kubebuilder:validation:XValidation:rule="!has(self.backoffLimitPerIndex) || (has(self.completionMode) && self.completionMode == 'Indexed')",message="requires completionMode Indexed",fieldPath=".backoffLimitPerIndex"
	// +kubebuilder:validation:XValidation:rule="!has(self.successPolicy) || (has(self.completionMode) && self.completionMode == 'Indexed')",message="requires completionMode Indexed",fieldPath=".successPolicy"
	// +kubebuilder:validation:XValidation:rule="!has(oldSelf.completionMode) || self.completionMode == oldSelf.completionMode",message="field is immutable",fieldPath=".completionMode"
	Spec batchv1.JobSpec `json:"spec,omitempty"`

	// Status is the job's observed progress, as in batch/v1.
	Status batchv1.JobStatus `json:"status,omitempty"`
}

// JobList is a list of Jobs.
//
// +kubebuilder:object:root=true
type JobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Job `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Job{}, &JobList{})
}
