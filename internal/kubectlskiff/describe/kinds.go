package describe

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// kind is one skiff kind that describe knows: how kubectl names it, how to
// list it, its upstream twin, and which other objects its description
// shows.
type kind struct {
	// names are the singular, the plural and the short names, skiff's too.
	names      []string
	namespaced bool
	newList    func() client.ObjectList
	// upstream is the upstream object with the same metadata, spec and
	// status, which kubectl's describer for upstream's kind reads.
	upstream func(client.Object) runtime.Object
	// related reads the other objects the describer shows with it, as
	// upstream objects (a Node's pods, a Deployment's ReplicaSets...).
	related func(ctx context.Context, c client.Reader, obj client.Object) ([]runtime.Object, error)
}

// kinds are every kind describe lays out, each by the describer of its
// upstream twin.
var kinds = []kind{
	{
		names: []string{"pod", "pods", "po", "spo"}, namespaced: true,
		newList:  func() client.ObjectList { return &skiffcorev1.PodList{} },
		upstream: func(o client.Object) runtime.Object { return podutil.AsCore(o.(*skiffcorev1.Pod)) },
	},
	{
		names:    []string{"node", "nodes", "no", "sno"},
		newList:  func() client.ObjectList { return &skiffcorev1.NodeList{} },
		upstream: func(o client.Object) runtime.Object { return podutil.NodeAsCore(o.(*skiffcorev1.Node)) },
		related:  nodeRelated,
	},
	{
		names: []string{"service", "services", "svc", "ssvc"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffcorev1.ServiceList{} },
		upstream: func(o client.Object) runtime.Object {
			s := o.(*skiffcorev1.Service)
			return &corev1.Service{ObjectMeta: s.ObjectMeta, Spec: s.Spec, Status: s.Status}
		},
		related: serviceRelated,
	},
	{
		names: []string{"deployment", "deployments", "deploy", "sdeploy"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffappsv1.DeploymentList{} },
		upstream: func(o client.Object) runtime.Object {
			d := o.(*skiffappsv1.Deployment)
			return &appsv1.Deployment{ObjectMeta: d.ObjectMeta, Spec: d.Spec, Status: d.Status}
		},
		related: deploymentRelated,
	},
	{
		names: []string{"replicaset", "replicasets", "rs", "srs"}, namespaced: true,
		newList:  func() client.ObjectList { return &skiffappsv1.ReplicaSetList{} },
		upstream: replicaSetAsUpstream,
		related: func(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
			return selectedPods(ctx, c, o.GetNamespace(), o.(*skiffappsv1.ReplicaSet).Spec.Selector)
		},
	},
	{
		names: []string{"statefulset", "statefulsets", "sts", "ssts"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffappsv1.StatefulSetList{} },
		upstream: func(o client.Object) runtime.Object {
			s := o.(*skiffappsv1.StatefulSet)
			return &appsv1.StatefulSet{ObjectMeta: s.ObjectMeta, Spec: s.Spec, Status: s.Status}
		},
		related: func(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
			return selectedPods(ctx, c, o.GetNamespace(), o.(*skiffappsv1.StatefulSet).Spec.Selector)
		},
	},
	{
		names: []string{"daemonset", "daemonsets", "ds", "sds"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffappsv1.DaemonSetList{} },
		upstream: func(o client.Object) runtime.Object {
			d := o.(*skiffappsv1.DaemonSet)
			return &appsv1.DaemonSet{ObjectMeta: d.ObjectMeta, Spec: d.Spec, Status: d.Status}
		},
		related: func(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
			return selectedPods(ctx, c, o.GetNamespace(), o.(*skiffappsv1.DaemonSet).Spec.Selector)
		},
	},
	{
		names: []string{"job", "jobs", "sjob"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffbatchv1.JobList{} },
		upstream: func(o client.Object) runtime.Object {
			j := o.(*skiffbatchv1.Job)
			return &batchv1.Job{ObjectMeta: j.ObjectMeta, Spec: j.Spec, Status: j.Status}
		},
	},
	{
		names: []string{"cronjob", "cronjobs", "cj", "scj"}, namespaced: true,
		newList: func() client.ObjectList { return &skiffbatchv1.CronJobList{} },
		upstream: func(o client.Object) runtime.Object {
			j := o.(*skiffbatchv1.CronJob)
			return &batchv1.CronJob{ObjectMeta: j.ObjectMeta, Spec: j.Spec, Status: j.Status}
		},
	},
}

// replicaSetAsUpstream is a skiff ReplicaSet's upstream twin; a
// Deployment's description shows them too.
func replicaSetAsUpstream(o client.Object) runtime.Object {
	rs := o.(*skiffappsv1.ReplicaSet)
	return &appsv1.ReplicaSet{ObjectMeta: rs.ObjectMeta, Spec: rs.Spec, Status: rs.Status}
}

// newObject is an empty object of the kind, to read one into: the type of
// its list's items.
func (k kind) newObject() client.Object {
	items := reflect.ValueOf(k.newList()).Elem().FieldByName("Items")
	return reflect.New(items.Type().Elem()).Interface().(client.Object)
}

// findKind returns the kind kubectl's name for it means: "pods", "deploy",
// "deployment.apps", "deployments.apps.skiff.dev".
func findKind(name string) (kind, error) {
	base, _, _ := strings.Cut(strings.ToLower(name), ".")
	for _, k := range kinds {
		for _, n := range k.names {
			if n == base {
				return k, nil
			}
		}
	}
	return kind{}, fmt.Errorf(`the server doesn't have a resource type %q that describe knows: use pods, nodes, services, deployments, replicasets, statefulsets, daemonsets, jobs or cronjobs`, name)
}

// nodeRelated reads what kubectl shows with a Node: its pods that have not
// finished (for "Non-terminated Pods" and "Allocated resources") and its
// heartbeat Lease.
func nodeRelated(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
	var pods skiffcorev1.PodList
	if err := c.List(ctx, &pods, client.MatchingFields{"spec.nodeName": o.GetName()}); err != nil {
		return nil, fmt.Errorf("listing the pods of node %s: %w", o.GetName(), err)
	}
	var out []runtime.Object
	for i := range pods.Items {
		if !podutil.IsTerminal(&pods.Items[i]) {
			out = append(out, podutil.AsCore(&pods.Items[i]))
		}
	}
	var lease coordinationv1.Lease
	err := c.Get(ctx, types.NamespacedName{Namespace: corev1.NamespaceNodeLease, Name: o.GetName()}, &lease)
	switch {
	case err == nil:
		out = append(out, &lease)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading the lease of node %s: %w", o.GetName(), err)
	}
	return out, nil
}

// serviceRelated reads a Service's EndpointSlices, which kubectl shows as
// its Endpoints.
func serviceRelated(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
	var slices skiffcorev1.EndpointSliceList
	if err := c.List(ctx, &slices, client.InNamespace(o.GetNamespace()),
		client.MatchingLabels{skiffcorev1.LabelServiceName: o.GetName()}); err != nil {
		return nil, fmt.Errorf("listing the endpointslices of service %s: %w", o.GetName(), err)
	}
	var out []runtime.Object
	for _, s := range slices.Items {
		out = append(out, &discoveryv1.EndpointSlice{ObjectMeta: s.ObjectMeta, AddressType: s.AddressType, Endpoints: s.Endpoints, Ports: s.Ports})
	}
	return out, nil
}

// deploymentRelated reads the ReplicaSets of a Deployment's namespace,
// among which kubectl finds its new and old ones.
func deploymentRelated(ctx context.Context, c client.Reader, o client.Object) ([]runtime.Object, error) {
	var rss skiffappsv1.ReplicaSetList
	if err := c.List(ctx, &rss, client.InNamespace(o.GetNamespace())); err != nil {
		return nil, fmt.Errorf("listing the replicasets of deployment %s: %w", o.GetName(), err)
	}
	var out []runtime.Object
	for i := range rss.Items {
		if metav1.IsControlledBy(&rss.Items[i], o) {
			out = append(out, replicaSetAsUpstream(&rss.Items[i]))
		}
	}
	return out, nil
}

// selectedPods reads the pods a workload's selector matches, which kubectl
// counts by phase in "Pods Status".
func selectedPods(ctx context.Context, c client.Reader, ns string, selector *metav1.LabelSelector) ([]runtime.Object, error) {
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, err
	}
	var pods skiffcorev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	var out []runtime.Object
	for i := range pods.Items {
		out = append(out, podutil.AsCore(&pods.Items[i]))
	}
	return out, nil
}

// events reads the real Events about obj; the describer picks those about
// this very object (by UID) and orders them. Events about cluster-scoped
// objects (Nodes) may be in any namespace.
func events(ctx context.Context, c client.Reader, obj client.Object) ([]runtime.Object, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace()),
		client.MatchingFields{"involvedObject.name": obj.GetName()}); err != nil {
		return nil, fmt.Errorf("listing the events of %s: %w", obj.GetName(), err)
	}
	var out []runtime.Object
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out, nil
}
