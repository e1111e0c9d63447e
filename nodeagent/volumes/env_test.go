package volumes

import (
	"context"
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

func testPod(containers ...corev1.Container) *skiffcorev1.Pod {
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web-0", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "robot", Containers: containers},
	}
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
}

func resourceRef(container, res, divisor string) *corev1.EnvVarSource {
	sel := &corev1.ResourceFieldSelector{ContainerName: container, Resource: res}
	if divisor != "" {
		sel.Divisor = resource.MustParse(divisor)
	}
	return &corev1.EnvVarSource{ResourceFieldRef: sel}
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func secretKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func fromConfigMap(name, prefix string, optional bool) corev1.EnvFromSource {
	return corev1.EnvFromSource{Prefix: prefix, ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: &optional}}
}

func fromSecret(name, prefix string, optional bool) corev1.EnvFromSource {
	return corev1.EnvFromSource{Prefix: prefix, SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Optional: &optional}}
}

func TestResolveEnv(t *testing.T) {
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
	}
	limited := corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		other   *corev1.Container // a second container of the pod
		want    []string
		wantErr string
	}{{
		name: "plain values expand earlier variables only",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "A", Value: "1"},
			{Name: "B", Value: "$(A)-$(C)"},
			{Name: "C", Value: "3"},
			{Name: "ESCAPED", Value: "$$(A)"},
			{Name: "EMPTY"},
		}},
		want: []string{"A=1", "B=1-$(C)", "C=3", "ESCAPED=$(A)", "EMPTY="},
	}, {
		name: "envFrom configMap: sorted keys, prefix, invalid names skipped, env overrides in place",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{fromConfigMap("app", "APP_", false)},
			Env:     []corev1.EnvVar{{Name: "X", Value: "$(APP_PORT)"}, {Name: "APP_LEVEL", Value: "info"}},
		},
		want: []string{"APP_LEVEL=info", "APP_PORT=8080", "X=8080"},
	}, {
		name: "envFrom secret, and a later source overrides an earlier one",
		c: corev1.Container{EnvFrom: []corev1.EnvFromSource{
			fromConfigMap("app", "", false), fromSecret("creds", "", false), fromConfigMap("app", "", false),
		}},
		want: []string{"LEVEL=debug", "PORT=8080", "PASS=s3cret", "USER=admin"},
	}, {
		name: "optional missing envFrom sources are skipped",
		c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{fromConfigMap("nope", "", true), fromSecret("nope", "", true)},
			Env:     []corev1.EnvVar{{Name: "A", Value: "a"}},
		},
		want: []string{"A=a"},
	}, {
		name:    "required missing envFrom configMap",
		c:       corev1.Container{EnvFrom: []corev1.EnvFromSource{fromConfigMap("app", "", false), fromConfigMap("nope", "", false)}},
		wantErr: `spec.containers[0].envFrom[1].configMapRef: configmap "nope" not found: create it or mark the reference optional`,
	}, {
		name:    "required missing envFrom secret",
		c:       corev1.Container{EnvFrom: []corev1.EnvFromSource{fromSecret("nope", "", false)}},
		wantErr: `spec.containers[0].envFrom[0].secretRef: secret "nope" not found: create it or mark the reference optional`,
	}, {
		name: "fieldRef: every supported field",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "NAME", ValueFrom: fieldRef("metadata.name")},
			{Name: "NS", ValueFrom: fieldRef("metadata.namespace")},
			{Name: "UID", ValueFrom: fieldRef("metadata.uid")},
			{Name: "LABELS", ValueFrom: fieldRef("metadata.labels")},
			{Name: "APP", ValueFrom: fieldRef("metadata.labels['app']")},
			{Name: "NOTE", ValueFrom: fieldRef("metadata.annotations['note']")},
			{Name: "ANN", ValueFrom: fieldRef("metadata.annotations")},
			{Name: "NODE", ValueFrom: fieldRef("spec.nodeName")},
			{Name: "SA", ValueFrom: fieldRef("spec.serviceAccountName")},
			{Name: "IP", ValueFrom: fieldRef("status.podIP")},
			{Name: "IPS", ValueFrom: fieldRef("status.podIPs")},
			{Name: "HOST", ValueFrom: fieldRef("status.hostIP")},
			{Name: "HOSTS", ValueFrom: fieldRef("status.hostIPs")},
			{Name: "URL", Value: "http://$(IP):80"},
		}},
		want: []string{"NAME=web-0", "NS=ns", "UID=uid-1", "LABELS=app=\"web\"\ntier=\"front\"", "APP=web",
			`NOTE=say "hi"`, `ANN=note="say \"hi\""`, "NODE=n1", "SA=robot", "IP=10.244.1.5", "IPS=10.244.1.5",
			"HOST=192.168.0.2", "HOSTS=192.168.0.2", "URL=http://10.244.1.5:80"},
	}, {
		name:    "fieldRef: unsupported path",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: fieldRef("spec.hostname")}}},
		wantErr: `spec.containers[0].env[0].valueFrom.fieldRef: unsupported fieldPath "spec.hostname"`,
	}, {
		name: "resourceFieldRef: limits, requests, divisors, node allocatable as default limit, other container",
		c: corev1.Container{Resources: limited, Env: []corev1.EnvVar{
			{Name: "CPU_LIMIT", ValueFrom: resourceRef("", "limits.cpu", "")},
			{Name: "CPU_LIMIT_M", ValueFrom: resourceRef("", "limits.cpu", "1m")},
			{Name: "CPU_REQ_M", ValueFrom: resourceRef("", "requests.cpu", "1m")},
			{Name: "MEM_LIMIT_MI", ValueFrom: resourceRef("", "limits.memory", "1Mi")},
			{Name: "MEM_REQ", ValueFrom: resourceRef("", "requests.memory", "")},
			{Name: "OTHER_CPU", ValueFrom: resourceRef("sidecar", "limits.cpu", "")},
			{Name: "OTHER_MEM_GI", ValueFrom: resourceRef("sidecar", "limits.memory", "1Gi")},
			{Name: "OTHER_REQ", ValueFrom: resourceRef("sidecar", "requests.cpu", "")},
		}},
		other: &corev1.Container{Name: "sidecar"},
		want: []string{"CPU_LIMIT=1", "CPU_LIMIT_M=500", "CPU_REQ_M=250", "MEM_LIMIT_MI=64", "MEM_REQ=67108864",
			"OTHER_CPU=2", "OTHER_MEM_GI=4", "OTHER_REQ=0"},
	}, {
		name:    "resourceFieldRef: unknown container",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: resourceRef("ghost", "limits.cpu", "")}}},
		wantErr: `spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName: no container "ghost" in the pod`,
	}, {
		name:    "resourceFieldRef: unsupported resource",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: resourceRef("", "limits.gpu", "")}}},
		wantErr: `spec.containers[0].env[0].valueFrom.resourceFieldRef: unsupported resource "limits.gpu": use requests.* or limits.* of cpu, memory, ephemeral-storage or hugepages-*`,
	}, {
		name: "configMapKeyRef and secretKeyRef, optional misses left out",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "LEVEL", ValueFrom: cmKey("app", "LEVEL", false)},
			{Name: "NOKEY", ValueFrom: cmKey("app", "nokey", true)},
			{Name: "NOCM", ValueFrom: cmKey("nope", "x", true)},
			{Name: "USER", ValueFrom: secretKey("creds", "USER", false)},
			{Name: "NOSKEY", ValueFrom: secretKey("creds", "nokey", true)},
			{Name: "NOSECRET", ValueFrom: secretKey("nope", "x", true)},
			{Name: "DSN", Value: "$(USER)@$(LEVEL)/$(NOKEY)"},
		}},
		want: []string{"LEVEL=debug", "USER=admin", "DSN=admin@debug/$(NOKEY)"},
	}, {
		name: "configMapKeyRef: missing configmap",
		c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "A", Value: "a"}, {Name: "B", Value: "b"}, {Name: "X", ValueFrom: cmKey("x", "k", false)},
		}},
		wantErr: `spec.containers[0].env[2].valueFrom.configMapKeyRef: configmap "x" not found: create it or mark the reference optional`,
	}, {
		name:    "configMapKeyRef: missing key",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("app", "nokey", false)}}},
		wantErr: `spec.containers[0].env[0].valueFrom.configMapKeyRef: configmap "app" has no key "nokey": add it or mark the reference optional`,
	}, {
		name:    "secretKeyRef: missing secret",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("nope", "k", false)}}},
		wantErr: `spec.containers[0].env[0].valueFrom.secretKeyRef: secret "nope" not found: create it or mark the reference optional`,
	}, {
		name:    "secretKeyRef: missing key",
		c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("creds", "nokey", false)}}},
		wantErr: `spec.containers[0].env[0].valueFrom.secretKeyRef: secret "creds" has no key "nokey": add it or mark the reference optional`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Name = "main"
			pod := testPod(tc.c)
			if tc.other != nil {
				pod.Spec.Containers = append(pod.Spec.Containers, *tc.other)
			}
			got, err := ResolveEnv(context.Background(), testObjects(), pod, &pod.Spec.Containers[0], "10.244.1.5", "192.168.0.2", allocatable)
			if tc.wantErr != "" {
				requireConfigError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("env =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

// An init container's errors name its own list.
func TestResolveEnvInitContainerField(t *testing.T) {
	pod := testPod(corev1.Container{Name: "main"})
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "k", false)}}}}
	_, err := ResolveEnv(context.Background(), testObjects(), pod, &pod.Spec.InitContainers[0], "", "", nil)
	requireConfigError(t, err, `spec.initContainers[0].env[0].valueFrom.configMapKeyRef: configmap "nope" not found: create it or mark the reference optional`)
}

// brokenReader fails as an apiserver that cannot be reached does.
type brokenReader struct{}

func (brokenReader) ConfigMap(context.Context, string, string) (*corev1.ConfigMap, error) {
	return nil, errors.New("connection refused")
}

func (brokenReader) Secret(context.Context, string, string) (*corev1.Secret, error) {
	return nil, errors.New("connection refused")
}

// A failed read is transient, even for an optional reference: the runtime
// retries instead of reporting a config error or starting without it.
func TestResolveEnvReadFailureIsTransient(t *testing.T) {
	pod := testPod(corev1.Container{Name: "main", Env: []corev1.EnvVar{{Name: "X", ValueFrom: secretKey("creds", "USER", true)}}})
	_, err := ResolveEnv(context.Background(), brokenReader{}, pod, &pod.Spec.Containers[0], "", "", nil)
	want := `spec.containers[0].env[0].valueFrom.secretKeyRef: reading secret "creds": connection refused`
	if err == nil || err.Error() != want || IsConfigError(err) {
		t.Fatalf("error = %v, want the transient %s", err, want)
	}
}
