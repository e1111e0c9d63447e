package api_test

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Valid objects that each invalid case below breaks in one place.
const (
	validDeployment = `
apiVersion: apps.skiff.dev/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers: [{name: web, image: skiff.dev/test/echo:v1}]
`
	validReplicaSet = `
apiVersion: apps.skiff.dev/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: skiff.dev/test/echo:v1}]
`
	validPod = `
apiVersion: core.skiff.dev/v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: web, image: skiff.dev/test/echo:v1}]
`
	validJob = `
apiVersion: batch.skiff.dev/v1
kind: Job
metadata: {name: pi}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: pi, image: skiff.dev/test/busybox:v1}]
`
	validCronJob = `
apiVersion: batch.skiff.dev/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: date, image: skiff.dev/test/busybox:v1}]
`
)

// TestInvalidObjectsAreRejectedNamingTheField checks that the apiserver
// refuses each invalid object with a message that names the field at fault.
func TestInvalidObjectsAreRejectedNamingTheField(t *testing.T) {
	cases := []struct {
		name    string
		base    string
		breakIt func(o map[string]any)
		want    []string
	}{
		{"negative replicas", validDeployment,
			set("spec.replicas", -1),
			[]string{"spec.replicas", "must be greater than or equal to 0"}},
		{"negative replicas on a ReplicaSet", validReplicaSet,
			set("spec.replicas", -3),
			[]string{"spec.replicas", "must be greater than or equal to 0"}},
		{"selector that does not match the template's labels", validDeployment,
			set("spec.selector.matchLabels.app", "api"),
			[]string{"spec.selector", "selector does not match template labels"}},
		{"selector expression that does not match the template's labels", validReplicaSet,
			set("spec.selector.matchExpressions", []any{map[string]any{"key": "tier", "operator": "In", "values": []any{"back"}}}),
			[]string{"spec.selector", "selector does not match template labels"}},
		{"empty selector", validDeployment,
			set("spec.selector", map[string]any{}),
			[]string{"spec.selector", "empty selector is invalid"}},
		{"duplicate container names", validDeployment,
			set("spec.template.spec.containers", []any{
				map[string]any{"name": "web", "image": "a"}, map[string]any{"name": "web", "image": "b"}}),
			[]string{"spec.template.spec.containers[1]", "Duplicate value"}},
		{"duplicate container names in a Pod", validPod,
			set("spec.containers", []any{
				map[string]any{"name": "app", "image": "a"}, map[string]any{"name": "app", "image": "b"}}),
			[]string{"spec.containers[1]", "Duplicate value"}},
		{"a Deployment whose pods do not restart", validDeployment,
			set("spec.template.spec.restartPolicy", "Never"),
			[]string{"spec.template.spec.restartPolicy", `only "Always"`}},
		{"restartPolicy Always in a Job", validJob,
			set("spec.template.spec.restartPolicy", "Always"),
			[]string{"spec.template.spec.restartPolicy", `"OnFailure" or "Never"`}},
		{"no restartPolicy in a Job", validJob,
			unset("spec.template.spec.restartPolicy"),
			[]string{"spec.template.spec.restartPolicy", `"OnFailure" or "Never"`}},
		{"restartPolicy Always in a CronJob's Job", validCronJob,
			set("spec.jobTemplate.spec.template.spec.restartPolicy", "Always"),
			[]string{"spec.jobTemplate.spec.template.spec.restartPolicy", `"OnFailure" or "Never"`}},
		{"cron schedule with a minute out of range", validCronJob,
			set("spec.schedule", "61 * * * *"),
			[]string{"spec.schedule", "invalid cron schedule"}},
		{"cron schedule with four fields", validCronJob,
			set("spec.schedule", "* * * *"),
			[]string{"spec.schedule", "invalid cron schedule"}},
		{"cron schedule with a TZ prefix", validCronJob,
			set("spec.schedule", "TZ=UTC 0 * * * *"),
			[]string{"spec.schedule", "use spec.timeZone"}},
		{"the Local time zone", validCronJob,
			set("spec.timeZone", "Local"),
			[]string{"spec.timeZone", "explicit time zone"}},
		{"an empty time zone", validCronJob,
			set("spec.timeZone", ""),
			[]string{"spec.timeZone", "explicit time zone"}},
		{"a time zone that is a path", validCronJob,
			set("spec.timeZone", "../etc/localtime"),
			[]string{"spec.timeZone", "unknown time zone"}},
		{"maxSurge and maxUnavailable both 0", validDeployment,
			set("spec.strategy", map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": 0, "maxUnavailable": "0%"}}),
			[]string{"spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0"}},
		{"rollingUpdate with the Recreate strategy", validDeployment,
			set("spec.strategy", map[string]any{"type": "Recreate", "rollingUpdate": map[string]any{"maxSurge": 1}}),
			[]string{"spec.strategy.rollingUpdate", "Recreate"}},
		{"unknown strategy type", validDeployment,
			set("spec.strategy.type", "BlueGreen"),
			[]string{"spec.strategy.type", "Unsupported value"}},
		{"negative Job parallelism", validJob,
			set("spec.parallelism", -1),
			[]string{"spec.parallelism", "must be greater than or equal to 0"}},
		{"Indexed Job without completions", validJob,
			set("spec.completionMode", "Indexed"),
			[]string{"spec.completions", "Indexed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fromYAML(t, tc.base)
			tc.breakIt(o.Object)
			o.SetNamespace(newNamespace(t))
			err := env.Client.Create(context.Background(), o)
			if err == nil {
				t.Fatalf("the apiserver accepted an object with %s", tc.name)
			}
			mustContainAll(t, err.Error(), tc.want...)
		})
	}
}

// TestValidObjectsAreAccepted guards the rules above against refusing good
// input: each base object, and the legitimate edge cases, must apply.
func TestValidObjectsAreAccepted(t *testing.T) {
	cases := []struct {
		name string
		base string
		edit func(o map[string]any)
	}{
		{"deployment", validDeployment, func(map[string]any) {}},
		{"replicaset", validReplicaSet, func(map[string]any) {}},
		{"pod", validPod, func(map[string]any) {}},
		{"job", validJob, func(map[string]any) {}},
		{"cronjob", validCronJob, func(map[string]any) {}},
		{"zero replicas", validDeployment, set("spec.replicas", 0)},
		{"maxSurge 0 with maxUnavailable 1", validDeployment,
			set("spec.strategy", map[string]any{"rollingUpdate": map[string]any{"maxSurge": 0, "maxUnavailable": 1}})},
		{"Recreate", validDeployment, set("spec.strategy", map[string]any{"type": "Recreate"})},
		{"selector expressions that match", validReplicaSet,
			set("spec.selector.matchExpressions", []any{
				map[string]any{"key": "app", "operator": "In", "values": []any{"web", "api"}},
				map[string]any{"key": "canary", "operator": "DoesNotExist"},
				map[string]any{"key": "app", "operator": "NotIn", "values": []any{"db"}},
				map[string]any{"key": "app", "operator": "Exists"},
			})},
		{"macro schedule", validCronJob, set("spec.schedule", "@hourly")},
		{"named months and days", validCronJob, set("spec.schedule", "30 6 1-15 JAN,jul mon-fri")},
		{"a deep time zone name", validCronJob, set("spec.timeZone", "America/Argentina/Buenos_Aires")},
		{"a time zone with signs", validCronJob, set("spec.timeZone", "Etc/GMT+5")},
		{"Indexed Job", validJob, func(o map[string]any) {
			set("spec.completionMode", "Indexed")(o)
			set("spec.completions", 3)(o)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := fromYAML(t, tc.base)
			tc.edit(o.Object)
			o.SetNamespace(newNamespace(t))
			if err := env.Client.Create(context.Background(), o); err != nil {
				t.Fatalf("a valid object was refused: %v", err)
			}
		})
	}
}

// TestSelectorIsImmutable checks upstream's apps/v1 rule on update.
func TestSelectorIsImmutable(t *testing.T) {
	o := fromYAML(t, validDeployment)
	o.SetNamespace(newNamespace(t))
	ctx := context.Background()
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	set("spec.selector.matchLabels", map[string]any{"app": "web", "tier": "front"})(o.Object)
	err := env.Client.Update(ctx, o)
	if err == nil {
		t.Fatal("the selector of a Deployment was changed")
	}
	mustContainAll(t, err.Error(), "spec.selector", "field is immutable")
}

// TestPodIsBoundOnce checks that spec.nodeName may be set once, by a
// binding, and never moved: upstream's binding subresource refuses a second
// binding, and skiff's scheduler relies on the same refusal.
func TestPodIsBoundOnce(t *testing.T) {
	ctx := context.Background()
	o := fromYAML(t, validPod)
	o.SetNamespace(newNamespace(t))
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	set("spec.nodeName", "node-a")(o.Object)
	if err := env.Client.Update(ctx, o); err != nil {
		t.Fatalf("binding an unbound pod was refused: %v", err)
	}
	for _, move := range []func(map[string]any){set("spec.nodeName", "node-b"), unset("spec.nodeName")} {
		moved := o.DeepCopy()
		move(moved.Object)
		err := env.Client.Update(ctx, moved)
		if err == nil {
			t.Fatalf("a bound pod was moved: %v", moved.Object["spec"])
		}
		mustContainAll(t, err.Error(), "spec.nodeName", "may not be changed once set")
	}
}

func fromYAML(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	o := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &o.Object); err != nil {
		t.Fatal(err)
	}
	return o
}

// set returns an edit that sets a dotted path, creating objects on the way.
func set(path string, value any) func(map[string]any) {
	return func(o map[string]any) {
		if err := unstructured.SetNestedField(o, toJSONValue(value), splitPath(path)...); err != nil {
			panic(err)
		}
	}
}

// unset returns an edit that removes a dotted path.
func unset(path string) func(map[string]any) {
	return func(o map[string]any) { unstructured.RemoveNestedField(o, splitPath(path)...) }
}
