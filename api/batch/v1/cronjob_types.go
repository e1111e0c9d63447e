package v1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CronJob creates Jobs on a cron schedule. It mirrors batch/v1 CronJob.
//
// The schedule rule below is CronScheduleRule, checked against robfig/cron
// by this package's tests so that the apiserver accepts exactly what the
// controller can parse.
//
// The timeZone rules refuse, as upstream's validation, an empty zone,
// "Local" and names that cannot be tz database names; a well-formed name
// the database lacks is left to the controller (UnknownTimeZone Event).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scj;cj,categories=skiff
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Timezone",type=string,JSONPath=`.spec.timeZone`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.active[*].name`
// +kubebuilder:printcolumn:name="Last Schedule",type=date,JSONPath=`.status.lastScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Containers",type=string,JSONPath=`.spec.jobTemplate.spec.template.spec.containers[*].name`,priority=1
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.jobTemplate.spec.template.spec.containers[*].image`,priority=1
type CronJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the schedule and the Job template, field for field as in batch/v1.
	// +kubebuilder:validation:XValidation:rule="self.schedule.matches('^ *(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every +([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+|([*?]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]*)?(,([*?]|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]*)?)* +([*?]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]*)?(,([*?]|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[1-9][0-9]*)?)* +([*?]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]*)?(,([*?]|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[1-9][0-9]*)?)* +([*?]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]*)?(,([*?]|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[1-9][0-9]*)?)* +([*?]|(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]*)?(,([*?]|(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat))(-(0?[0-6]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[1-9][0-9]*)?)*) *$')",message="invalid cron schedule: use five fields (minute hour day-of-month month day-of-week) or a macro such as @hourly; a TZ= prefix is not allowed, use spec.timeZone",fieldPath=".schedule"
	// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || (size(self.timeZone) > 0 && !self.timeZone.matches('^(?i:local)$'))",message="timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",fieldPath=".timeZone"
	// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || self.timeZone.matches('^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,13}(/[A-Za-z0-9_+][A-Za-z0-9._+-]{0,13})*$')",message="unknown time zone: use a tz database name such as Europe/Paris or UTC",fieldPath=".timeZone"
	// +kubebuilder:validation:XValidation:rule="!has(self.startingDeadlineSeconds) || self.startingDeadlineSeconds >= 0",message="must be greater than or equal to 0",fieldPath=".startingDeadlineSeconds"
	// +kubebuilder:validation:XValidation:rule="self.jobTemplate.spec.template.spec.restartPolicy in ['OnFailure', 'Never']",message="Unsupported value: a Job's pods may only use restartPolicy \"OnFailure\" or \"Never\"",fieldPath=".jobTemplate.spec.template.spec.restartPolicy"
	// +kubebuilder:validation:XValidation:rule="!has(self.successfulJobsHistoryLimit) || self.successfulJobsHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".successfulJobsHistoryLimit"
	// +kubebuilder:validation:XValidation:rule="!has(self.failedJobsHistoryLimit) || self.failedJobsHistoryLimit >= 0",message="must be greater than or equal to 0",fieldPath=".failedJobsHistoryLimit"
	Spec batchv1.CronJobSpec `json:"spec,omitempty"`

	// Status lists the active Jobs and the last schedule and success times.
	Status batchv1.CronJobStatus `json:"status,omitempty"`
}

// CronJobList is a list of CronJobs.
//
// +kubebuilder:object:root=true
type CronJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CronJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CronJob{}, &CronJobList{})
}
