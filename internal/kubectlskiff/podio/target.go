// Package podio is `kubectl skiff logs` and `kubectl skiff exec`: they find
// a pod (by name, through a workload, or by a label selector), its node,
// and call that node agent's /containerLogs and /exec endpoints directly,
// with the kubeconfig's credentials, as the apiserver would call a
// kubelet's for kubectl.
package podio

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// kind is what a TYPE/NAME argument names: a pod, or a workload whose
// pods are found by its selector.
type kind string

const (
	kindPod         kind = "pod"
	kindDeployment  kind = "deployment"
	kindReplicaSet  kind = "replicaset"
	kindStatefulSet kind = "statefulset"
	kindDaemonSet   kind = "daemonset"
	kindJob         kind = "job"
)

// kindNames maps every name kubectl accepts for a kind (singular, plural,
// short, group-qualified) to the kind.
var kindNames = map[string]kind{}

func init() {
	for k, spec := range map[kind]struct {
		group string
		names []string
	}{
		kindPod:         {"core.skiff.dev", []string{"pod", "pods", "po"}},
		kindDeployment:  {"apps.skiff.dev", []string{"deployment", "deployments", "deploy", "sdeploy"}},
		kindReplicaSet:  {"apps.skiff.dev", []string{"replicaset", "replicasets", "rs"}},
		kindStatefulSet: {"apps.skiff.dev", []string{"statefulset", "statefulsets", "sts", "ssts"}},
		kindDaemonSet:   {"apps.skiff.dev", []string{"daemonset", "daemonsets", "ds", "sds"}},
		kindJob:         {"batch.skiff.dev", []string{"job", "jobs"}},
	} {
		short, _, _ := strings.Cut(spec.group, ".")
		for _, n := range spec.names {
			kindNames[n] = k
			kindNames[n+"."+short] = k
			kindNames[n+"."+spec.group] = k
		}
	}
}

// target is the object an argument names: POD, or TYPE/NAME.
type target struct {
	kind kind
	name string
}

func (t target) String() string { return string(t.kind) + "/" + t.name }

// parseTarget reads POD or TYPE/NAME, as kubectl logs and exec take them.
func parseTarget(arg string) (target, error) {
	typ, name, ok := strings.Cut(arg, "/")
	if !ok {
		return target{kind: kindPod, name: arg}, nil
	}
	if name == "" || strings.Contains(name, "/") {
		return target{}, fmt.Errorf("arguments in resource/name form must have a single resource and name, got %q", arg)
	}
	k, found := kindNames[strings.ToLower(typ)]
	if !found {
		return target{}, fmt.Errorf("cannot find the pods of resource type %q: name a pod, or a deployment (deploy), replicaset (rs), statefulset (sts), daemonset (ds) or job", typ)
	}
	return target{kind: k, name: name}, nil
}

// getPod gets a pod, with kubectl's error when it does not exist.
func getPod(ctx context.Context, c client.Reader, namespace, name string) (*skiffcorev1.Pod, error) {
	p := &skiffcorev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, p); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, fmt.Errorf("pods %q not found", name)
		}
		return nil, err
	}
	return p, nil
}

// resolvePod is the pod t names: the pod itself, or the workload's pod
// kubectl would pick (see byLogging). found is how many pods it chose
// from: 1 for a pod.
func resolvePod(ctx context.Context, c client.Reader, namespace string, t target) (p *skiffcorev1.Pod, found int, err error) {
	if t.kind == kindPod {
		p, err := getPod(ctx, c, namespace, t.name)
		return p, 1, err
	}
	selector, err := workloadSelector(ctx, c, namespace, t)
	if err != nil {
		return nil, 0, err
	}
	pods, err := listPods(ctx, c, namespace, selector)
	if err != nil {
		return nil, 0, err
	}
	if len(pods) == 0 {
		return nil, 0, fmt.Errorf("%s has no pods (selector %s)", t, selector)
	}
	return &pods[0], len(pods), nil
}

// listPods lists the pods selector matches, in the order kubectl prefers
// them for logs (byLogging).
func listPods(ctx context.Context, c client.Reader, namespace string, selector labels.Selector) ([]skiffcorev1.Pod, error) {
	var list skiffcorev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing pods (selector %s): %w", selector, err)
	}
	sort.SliceStable(list.Items, func(i, j int) bool { return byLogging(&list.Items[i], &list.Items[j]) })
	return list.Items, nil
}

// workloadSelector is the selector of the pods a workload controls.
func workloadSelector(ctx context.Context, c client.Reader, namespace string, t target) (labels.Selector, error) {
	var (
		obj      client.Object
		selector func() *metav1.LabelSelector
	)
	switch t.kind {
	case kindDeployment:
		o := &skiffappsv1.Deployment{}
		obj, selector = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case kindReplicaSet:
		o := &skiffappsv1.ReplicaSet{}
		obj, selector = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case kindStatefulSet:
		o := &skiffappsv1.StatefulSet{}
		obj, selector = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case kindDaemonSet:
		o := &skiffappsv1.DaemonSet{}
		obj, selector = o, func() *metav1.LabelSelector { return o.Spec.Selector }
	case kindJob:
		o := &skiffbatchv1.Job{}
		obj, selector = o, func() *metav1.LabelSelector { return jobSelector(o) }
	default:
		return nil, fmt.Errorf("%s is not a workload", t)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: t.name}, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, fmt.Errorf("%ss %q not found", t.kind, t.name)
		}
		return nil, err
	}
	s := selector()
	if s == nil {
		return nil, fmt.Errorf("%s has no spec.selector", t)
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.selector: %w", t, err)
	}
	if sel.Empty() {
		return nil, fmt.Errorf("%s: spec.selector is empty: it would select every pod in the namespace", t)
	}
	return sel, nil
}

// jobControllerUID is the label upstream's apiserver (here skiff's Job
// controller) puts on a Job's pods when the Job does not choose its own
// selector.
const jobControllerUID = "batch.kubernetes.io/controller-uid"

// jobSelector is the selector a Job's pods are found by: its own with
// manualSelector, else its controller-uid label, which skiff's Job
// controller uses since no apiserver fills spec.selector for a CRD.
func jobSelector(j *skiffbatchv1.Job) *metav1.LabelSelector {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return j.Spec.Selector
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{jobControllerUID: string(j.UID)}}
}
