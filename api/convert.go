package api

import "strings"

// upstreamToSkiff maps an upstream group/version and kind to the skiff
// apiVersion that serves the same kind. Kinds that skiff does not replace
// (ConfigMap, Secret, PersistentVolumeClaim, ...) are absent: they stay on
// the real built-in API.
var upstreamToSkiff = map[string]map[string]string{
	"v1": {
		"Pod": "core.skiff.dev/v1", "Node": "core.skiff.dev/v1", "Service": "core.skiff.dev/v1",
	},
	"discovery.k8s.io/v1": {"EndpointSlice": "core.skiff.dev/v1"},
	"apps/v1": {
		"ReplicaSet": "apps.skiff.dev/v1", "Deployment": "apps.skiff.dev/v1",
		"StatefulSet": "apps.skiff.dev/v1", "DaemonSet": "apps.skiff.dev/v1",
	},
	"batch/v1": {"Job": "batch.skiff.dev/v1", "CronJob": "batch.skiff.dev/v1"},
}

// SkiffAPIVersion returns the apiVersion under which skiff serves an
// upstream kind, and false when skiff leaves that kind to the built-in API.
func SkiffAPIVersion(apiVersion, kind string) (string, bool) {
	v, ok := upstreamToSkiff[apiVersion][kind]
	return v, ok
}

// IsSkiffAPIVersion reports whether apiVersion is one of skiff's groups.
func IsSkiffAPIVersion(apiVersion string) bool {
	return strings.Contains(apiVersion, ".skiff.dev/")
}
