package main

import (
	"encoding/json"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// enums are the closed sets of values that upstream's validation accepts
// for string fields. k8s.io/api marks these types +enum, which controller-gen
// does not translate; with the enum in the schema the apiserver answers as
// upstream does: `Unsupported value: "X": supported values: ...`.
var enums = []rule{
	{shape: shapePodSpec, field: "restartPolicy", edit: oneOf("Always", "OnFailure", "Never")},
	{shape: shapePodSpec, field: "dnsPolicy", edit: oneOf("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")},
	{shape: shapeContainer, field: "imagePullPolicy", edit: oneOf("Always", "Never", "IfNotPresent")},
	{shape: shapeContainer, field: "terminationMessagePolicy", edit: oneOf("File", "FallbackToLogsOnError")},
	{path: "**.ports[].protocol", edit: oneOf("TCP", "UDP", "SCTP")},
	{path: "**.tolerations[].operator", edit: oneOf("Exists", "Equal")},
	{path: "**.tolerations[].effect", edit: oneOf("NoSchedule", "PreferNoSchedule", "NoExecute")},
	{path: "**.taints[].effect", edit: oneOf("NoSchedule", "PreferNoSchedule", "NoExecute")},
	{path: "**.topologySpreadConstraints[].whenUnsatisfiable", edit: oneOf("DoNotSchedule", "ScheduleAnyway")},
	{shape: shapeLabelSelector, field: "matchExpressions", edit: expressionOperators("In", "NotIn", "Exists", "DoesNotExist")},

	{shape: shapeServiceSpec, field: "type", edit: oneOf("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")},
	{shape: shapeServiceSpec, field: "sessionAffinity", edit: oneOf("None", "ClientIP")},
	{shape: shapeServiceSpec, field: "externalTrafficPolicy", edit: oneOf("Cluster", "Local")},
	{shape: shapeServiceSpec, field: "internalTrafficPolicy", edit: oneOf("Cluster", "Local")},
	{shape: shapeServiceSpec, field: "ipFamilyPolicy", edit: oneOf("SingleStack", "PreferDualStack", "RequireDualStack")},

	{kinds: []string{"Deployment"}, path: "spec.strategy.type", edit: oneOf("Recreate", "RollingUpdate")},
	{kinds: []string{"StatefulSet", "DaemonSet"}, path: "spec.updateStrategy.type", edit: oneOf("RollingUpdate", "OnDelete")},
	{kinds: []string{"StatefulSet"}, path: "spec.podManagementPolicy", edit: oneOf("OrderedReady", "Parallel")},
	{kinds: []string{"StatefulSet"}, path: "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", edit: oneOf("Retain", "Delete")},
	{kinds: []string{"StatefulSet"}, path: "spec.persistentVolumeClaimRetentionPolicy.whenScaled", edit: oneOf("Retain", "Delete")},

	{kinds: []string{"Job", "CronJob"}, path: "**.completionMode", edit: oneOf("NonIndexed", "Indexed")},
	{kinds: []string{"Job", "CronJob"}, path: "**.podReplacementPolicy", edit: oneOf("TerminatingOrFailed", "Failed")},
	{kinds: []string{"Job", "CronJob"}, path: "**.podFailurePolicy.rules[].action", edit: oneOf("FailJob", "FailIndex", "Ignore", "Count")},
	{kinds: []string{"Job", "CronJob"}, path: "**.podFailurePolicy.rules[].onExitCodes.operator", edit: oneOf("In", "NotIn")},
	{kinds: []string{"CronJob"}, path: "spec.concurrencyPolicy", edit: oneOf("Allow", "Forbid", "Replace")},
}

// oneOf restricts a string field to the given values.
func oneOf(values ...string) func(*apiextensionsv1.JSONSchemaProps) {
	return func(p *apiextensionsv1.JSONSchemaProps) {
		p.Enum = p.Enum[:0]
		for _, v := range values {
			raw, _ := json.Marshal(v)
			p.Enum = append(p.Enum, apiextensionsv1.JSON{Raw: raw})
		}
	}
}

// expressionOperators restricts the operator of a label selector's
// expressions.
func expressionOperators(values ...string) func(*apiextensionsv1.JSONSchemaProps) {
	restrict := oneOf(values...)
	return func(p *apiextensionsv1.JSONSchemaProps) {
		if p.Items == nil || p.Items.Schema == nil {
			return
		}
		if op, ok := p.Items.Schema.Properties["operator"]; ok {
			restrict(&op)
			p.Items.Schema.Properties["operator"] = op
		}
	}
}
