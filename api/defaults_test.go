package api_test

import (
	"context"
	"reflect"
	"testing"
)

// TestUpstreamDefaults checks that the apiserver fills in upstream's
// defaults from the schema, for minimal objects of each kind.
func TestUpstreamDefaults(t *testing.T) {
	cases := []struct {
		name string
		base string
		want map[string]any // dotted path -> value
	}{
		{"Deployment", validDeployment, map[string]any{
			"spec.revisionHistoryLimit":                                int64(10),
			"spec.progressDeadlineSeconds":                             int64(600),
			"spec.strategy.type":                                       "RollingUpdate",
			"spec.strategy.rollingUpdate.maxSurge":                     "25%",
			"spec.strategy.rollingUpdate.maxUnavailable":               "25%",
			"spec.template.spec.restartPolicy":                         "Always",
			"spec.template.spec.dnsPolicy":                             "ClusterFirst",
			"spec.template.spec.terminationGracePeriodSeconds":         int64(30),
			"spec.template.spec.schedulerName":                         "default-scheduler",
			"spec.template.spec.containers.0.terminationMessagePath":   "/dev/termination-log",
			"spec.template.spec.containers.0.terminationMessagePolicy": "File",
		}},
		{"ReplicaSet", validReplicaSet, map[string]any{
			"spec.replicas": int64(1),
		}},
		{"Job", validJob, map[string]any{
			"spec.parallelism":    int64(1),
			"spec.backoffLimit":   int64(6),
			"spec.completionMode": "NonIndexed",
			"spec.suspend":        false,
		}},
		{"CronJob", validCronJob, map[string]any{
			"spec.concurrencyPolicy":             "Allow",
			"spec.suspend":                       false,
			"spec.successfulJobsHistoryLimit":    int64(3),
			"spec.failedJobsHistoryLimit":        int64(1),
			"spec.jobTemplate.spec.backoffLimit": int64(6),
		}},
		{"Pod with a probe and a port", `
apiVersion: core.skiff.dev/v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: web
    image: skiff.dev/test/echo:v1
    ports: [{containerPort: 80}]
    readinessProbe: {httpGet: {port: 80}}
`, map[string]any{
			"spec.containers.0.ports.0.protocol":                "TCP",
			"spec.containers.0.readinessProbe.periodSeconds":    int64(10),
			"spec.containers.0.readinessProbe.timeoutSeconds":   int64(1),
			"spec.containers.0.readinessProbe.successThreshold": int64(1),
			"spec.containers.0.readinessProbe.failureThreshold": int64(3),
			"spec.containers.0.readinessProbe.httpGet.path":     "/",
			"spec.containers.0.readinessProbe.httpGet.scheme":   "HTTP",
			"spec.enableServiceLinks":                           true,
		}},
		{"Service", `
apiVersion: core.skiff.dev/v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`, map[string]any{
			"spec.type":                  "ClusterIP",
			"spec.sessionAffinity":       "None",
			"spec.internalTrafficPolicy": "Cluster",
			"spec.ports.0.protocol":      "TCP",
		}},
		{"StatefulSet", `
apiVersion: apps.skiff.dev/v1
kind: StatefulSet
metadata: {name: kv}
spec:
  serviceName: kv
  selector: {matchLabels: {app: kv}}
  template:
    metadata: {labels: {app: kv}}
    spec:
      containers: [{name: kv, image: skiff.dev/test/echo:v1}]
`, map[string]any{
			"spec.replicas":                                         int64(1),
			"spec.podManagementPolicy":                              "OrderedReady",
			"spec.updateStrategy.type":                              "RollingUpdate",
			"spec.updateStrategy.rollingUpdate.partition":           int64(0),
			"spec.persistentVolumeClaimRetentionPolicy.whenDeleted": "Retain",
			"spec.persistentVolumeClaimRetentionPolicy.whenScaled":  "Retain",
			"spec.revisionHistoryLimit":                             int64(10),
		}},
		{"DaemonSet", `
apiVersion: apps.skiff.dev/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: skiff.dev/test/busybox:v1}]
`, map[string]any{
			"spec.updateStrategy.type":                         "RollingUpdate",
			"spec.updateStrategy.rollingUpdate.maxUnavailable": int64(1),
			"spec.updateStrategy.rollingUpdate.maxSurge":       int64(0),
			"spec.revisionHistoryLimit":                        int64(10),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fromYAML(t, tc.base)
			o.SetNamespace(newNamespace(t))
			if err := env.Client.Create(context.Background(), o); err != nil {
				t.Fatal(err)
			}
			got := readBack(t, o.GetNamespace(), o)
			for path, want := range tc.want {
				value, found := nestedValue(got.Object, splitPath(path))
				if !found || !reflect.DeepEqual(value, want) {
					t.Errorf("%s = %v (%T, found %v), want upstream's default %v", path, value, value, found, want)
				}
			}
		})
	}
}

// nestedValue reads a dotted path in which numbers index lists.
func nestedValue(obj any, path []string) (any, bool) {
	for _, p := range path {
		switch o := obj.(type) {
		case map[string]any:
			v, ok := o[p]
			if !ok {
				return nil, false
			}
			obj = v
		case []any:
			var i int
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(o) {
				return nil, false
			}
			obj = o[i]
		default:
			return nil, false
		}
	}
	return obj, true
}
