package main

// upstreamDefaults are the defaults that upstream Kubernetes applies in Go
// code (pkg/apis/*/v1/defaults.go) and that k8s.io/api's types therefore do
// not carry as markers. skiff keeps them in the CRD schemas so that the
// apiserver applies them, exactly as it would for the built-in kinds.
//
// A rule applies either to every schema node of a given shape (the set of
// properties that identifies, say, a PodSpec wherever it is embedded) or to a
// path below the root of the listed kinds. Defaults that upstream applies
// only on a condition (imagePullPolicy from the image tag, a Job's
// completions from its parallelism, a Service's targetPort from its port)
// cannot live in a schema; the controllers that read those fields apply them.
var upstreamDefaults = []rule{
	// PodSpec, wherever it is embedded.
	{shape: shapePodSpec, field: "restartPolicy", value: "Always"},
	{shape: shapePodSpec, field: "dnsPolicy", value: "ClusterFirst"},
	{shape: shapePodSpec, field: "terminationGracePeriodSeconds", value: 30},
	{shape: shapePodSpec, field: "schedulerName", value: "default-scheduler"},
	{shape: shapePodSpec, field: "enableServiceLinks", value: true},
	{shape: shapePodSpec, field: "securityContext", value: map[string]any{}},

	// Containers, init containers and ephemeral containers.
	{shape: shapeContainer, field: "terminationMessagePath", value: "/dev/termination-log"},
	{shape: shapeContainer, field: "terminationMessagePolicy", value: "File"},

	// Probes and their handlers.
	{shape: shapeProbe, field: "timeoutSeconds", value: 1},
	{shape: shapeProbe, field: "periodSeconds", value: 10},
	{shape: shapeProbe, field: "successThreshold", value: 1},
	{shape: shapeProbe, field: "failureThreshold", value: 3},
	{shape: shapeHTTPGet, field: "path", value: "/"},
	{shape: shapeHTTPGet, field: "scheme", value: "HTTP"},

	// Volumes and the downward API.
	{shape: shapeFileModes, field: "defaultMode", value: 0o644},
	{shape: shapeFieldRef, field: "apiVersion", value: "v1"},

	// Services and their ports.
	{shape: shapeServiceSpec, field: "type", value: "ClusterIP"},
	{shape: shapeServiceSpec, field: "sessionAffinity", value: "None"},
	{shape: shapeServiceSpec, field: "internalTrafficPolicy", value: "Cluster"},
	{shape: shapeServicePort, field: "protocol", value: "TCP"},
	{shape: shapeEndpointPort, field: "protocol", value: "TCP"},
	{kinds: []string{"Service"}, path: "spec.sessionAffinityConfig.clientIP.timeoutSeconds", value: 10800},

	// ReplicaSet, Deployment and StatefulSet replicas.
	{kinds: []string{"ReplicaSet", "Deployment", "StatefulSet"}, path: "spec.replicas", value: 1},

	// Deployment.
	{kinds: []string{"Deployment"}, path: "spec.revisionHistoryLimit", value: 10},
	{kinds: []string{"Deployment"}, path: "spec.progressDeadlineSeconds", value: 600},
	{kinds: []string{"Deployment"}, path: "spec.strategy", value: map[string]any{
		"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": "25%", "maxUnavailable": "25%"}}},
	{kinds: []string{"Deployment"}, path: "spec.strategy.type", value: "RollingUpdate"},
	{kinds: []string{"Deployment"}, path: "spec.strategy.rollingUpdate.maxSurge", value: "25%"},
	{kinds: []string{"Deployment"}, path: "spec.strategy.rollingUpdate.maxUnavailable", value: "25%"},

	// StatefulSet.
	{kinds: []string{"StatefulSet"}, path: "spec.podManagementPolicy", value: "OrderedReady"},
	{kinds: []string{"StatefulSet"}, path: "spec.revisionHistoryLimit", value: 10},
	{kinds: []string{"StatefulSet"}, path: "spec.updateStrategy", value: map[string]any{
		"type": "RollingUpdate", "rollingUpdate": map[string]any{"partition": 0}}},
	{kinds: []string{"StatefulSet"}, path: "spec.updateStrategy.type", value: "RollingUpdate"},
	{kinds: []string{"StatefulSet"}, path: "spec.updateStrategy.rollingUpdate.partition", value: 0},
	{kinds: []string{"StatefulSet"}, path: "spec.persistentVolumeClaimRetentionPolicy", value: map[string]any{
		"whenDeleted": "Retain", "whenScaled": "Retain"}},
	{kinds: []string{"StatefulSet"}, path: "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", value: "Retain"},
	{kinds: []string{"StatefulSet"}, path: "spec.persistentVolumeClaimRetentionPolicy.whenScaled", value: "Retain"},
	{kinds: []string{"StatefulSet"}, path: "spec.volumeClaimTemplates[].spec.volumeMode", value: "Filesystem"},

	// DaemonSet.
	{kinds: []string{"DaemonSet"}, path: "spec.revisionHistoryLimit", value: 10},
	{kinds: []string{"DaemonSet"}, path: "spec.updateStrategy", value: map[string]any{
		"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": 1, "maxSurge": 0}}},
	{kinds: []string{"DaemonSet"}, path: "spec.updateStrategy.type", value: "RollingUpdate"},
	{kinds: []string{"DaemonSet"}, path: "spec.updateStrategy.rollingUpdate.maxUnavailable", value: 1},
	{kinds: []string{"DaemonSet"}, path: "spec.updateStrategy.rollingUpdate.maxSurge", value: 0},

	// Job, and the Job template inside a CronJob.
	{kinds: []string{"Job"}, path: "spec.parallelism", value: 1},
	{kinds: []string{"Job"}, path: "spec.backoffLimit", value: 6},
	{kinds: []string{"Job"}, path: "spec.completionMode", value: "NonIndexed"},
	{kinds: []string{"Job"}, path: "spec.suspend", value: false},
	{kinds: []string{"CronJob"}, path: "spec.jobTemplate.spec.parallelism", value: 1},
	{kinds: []string{"CronJob"}, path: "spec.jobTemplate.spec.backoffLimit", value: 6},
	{kinds: []string{"CronJob"}, path: "spec.jobTemplate.spec.completionMode", value: "NonIndexed"},
	{kinds: []string{"CronJob"}, path: "spec.jobTemplate.spec.suspend", value: false},

	// CronJob.
	{kinds: []string{"CronJob"}, path: "spec.concurrencyPolicy", value: "Allow"},
	{kinds: []string{"CronJob"}, path: "spec.suspend", value: false},
	{kinds: []string{"CronJob"}, path: "spec.successfulJobsHistoryLimit", value: 3},
	{kinds: []string{"CronJob"}, path: "spec.failedJobsHistoryLimit", value: 1},
}

// Shapes name a k8s.io/api type by properties that only it has, so a rule
// follows the type into every kind that embeds it.
var (
	shapePodSpec      = []string{"containers", "dnsPolicy", "restartPolicy"}
	shapeContainer    = []string{"image", "terminationMessagePath"}
	shapeProbe        = []string{"periodSeconds", "failureThreshold", "timeoutSeconds"}
	shapeHTTPGet      = []string{"path", "port", "scheme", "httpHeaders"}
	shapeFileModes    = []string{"defaultMode"}
	shapeFieldRef     = []string{"fieldPath", "apiVersion"}
	shapeServiceSpec  = []string{"clusterIP", "sessionAffinity", "type"}
	shapeServicePort  = []string{"port", "targetPort", "nodePort", "protocol"}
	shapeEndpointPort = []string{"port", "appProtocol", "protocol", "name"}
)
