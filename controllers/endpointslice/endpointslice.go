// Package endpointslice keeps each selector Service's EndpointSlices: the
// pods its selector matches, with upstream's ready, serving and terminating
// conditions and each Service port resolved per pod, so that node agents
// send traffic only to ready pods.
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/controllerref"
	"skiff.dev/skiff/internal/recorder"
)

const (
	// LabelManagedBy marks the slices a controller keeps, so that it never
	// touches the hand-written slices of a Service without a selector.
	LabelManagedBy = "endpointslice.kubernetes.io/managed-by"
	// ManagedBy is this controller's value of LabelManagedBy.
	ManagedBy = "endpointslice-controller.skiff.dev"
	// labelHeadless marks the slices of a headless Service, as upstream.
	labelHeadless = "service.kubernetes.io/headless"

	// workers is how many Services are synced at once, as upstream's
	// --concurrent-service-endpoint-syncs default.
	workers = 5
	// staleRetry is when a pass that found the cache behind tries again.
	staleRetry = time.Second
)

// Setup registers the EndpointSlice controller with the manager.
func Setup(mgr ctrl.Manager) error {
	r := &Reconciler{
		Client:   mgr.GetClient(),
		Recorder: recorder.New(mgr, "endpointslice-controller"),
		tracker:  newTracker(),
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("endpointslice").
		For(&skiffcorev1.Service{}).
		Owns(&skiffcorev1.EndpointSlice{}).
		Watches(&skiffcorev1.Pod{}, r.podHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// Reconciler keeps EndpointSlices.
type Reconciler struct {
	client.Client
	Recorder events.EventRecorder

	tracker *tracker
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=services;pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=endpointslices,verbs=get;list;watch;create;update;delete

// Reconcile brings one Service's slices in line with its pods.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	// 1. Load the Service. A deleted one's slices go with it: they name it
	// as their controller, and the garbage collector deletes them.
	var svc skiffcorev1.Service
	if err := r.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.tracker.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// A Service without a selector has hand-written slices, and an
	// ExternalName one none at all: neither is this controller's.
	if !svc.DeletionTimestamp.IsZero() || len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return ctrl.Result{}, nil
	}

	// 2. List its slices, and wait for the cache to show our last writes.
	current, err := r.ownedSlices(ctx, &svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	if r.tracker.stale(req.NamespacedName, current) {
		logf.FromContext(ctx).V(1).Info("the cache lags this controller's slice writes; waiting for it")
		// The slice's watch event wakes the Service again; the requeue is
		// a fallback.
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}

	// 3. Build the desired endpoints from the matching pods.
	var pods skiffcorev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(svc.Namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return ctrl.Result{}, err
	}
	var eps []podEndpoint
	for i := range pods.Items {
		if inEndpoints(&pods.Items[i]) {
			eps = append(eps, endpointFor(&svc, &pods.Items[i]))
		}
	}

	// 4. Plan and write.
	p := planSlices(current, eps, sliceLabels(&svc), maxEndpointsPerSlice)
	if err := r.apply(ctx, &svc, p); err != nil {
		r.Recorder.Eventf(&svc, nil, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices", "Sync",
			"Error updating Endpoint Slices for Service %s/%s: %v", svc.Namespace, svc.Name, err)
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// ownedSlices lists the slices this controller keeps for svc. Slices of an
// earlier Service of the same name are left to the garbage collector.
func (r *Reconciler) ownedSlices(ctx context.Context, svc *skiffcorev1.Service) ([]skiffcorev1.EndpointSlice, error) {
	var list skiffcorev1.EndpointSliceList
	if err := r.List(ctx, &list, client.InNamespace(svc.Namespace),
		client.MatchingLabels{skiffcorev1.LabelServiceName: svc.Name, LabelManagedBy: ManagedBy}); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(s skiffcorev1.EndpointSlice) bool {
		return !metav1.IsControlledBy(&s, svc)
	}), nil
}

// sliceLabels are the labels every slice of svc carries.
func sliceLabels(svc *skiffcorev1.Service) map[string]string {
	l := map[string]string{skiffcorev1.LabelServiceName: svc.Name, LabelManagedBy: ManagedBy}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[labelHeadless] = ""
	}
	return l
}

// apply writes the plan: creates first and deletes last, so that a pod
// moving between port groups is never absent from every slice.
func (r *Reconciler) apply(ctx context.Context, svc *skiffcorev1.Service, p plan) error {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	ref, err := controllerref.NewControllerRef(svc, r.Scheme())
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range p.create {
		s.Namespace, s.GenerateName = svc.Namespace, svc.Name+"-"
		s.OwnerReferences = append(s.OwnerReferences, *ref)
		if err := r.Create(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("creating a slice: %w", err))
			continue
		}
		r.tracker.record(key, s.Name, s.Generation)
	}
	for _, s := range p.update {
		if err := r.Update(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("updating slice %s: %w", s.Name, err))
			continue
		}
		r.tracker.record(key, s.Name, s.Generation)
	}
	for _, s := range p.delete {
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting slice %s: %w", s.Name, err))
			continue
		}
		r.tracker.record(key, s.Name, deleted)
	}
	if n := len(p.create) + len(p.update) + len(p.delete); n > 0 {
		logf.FromContext(ctx).V(1).Info("synced endpoint slices", "created", len(p.create), "updated", len(p.update), "deleted", len(p.delete))
	}
	return errors.Join(errs...)
}

// servicesSelecting names the Services in namespace whose selector matches
// a pod's labels.
func (r *Reconciler) servicesSelecting(ctx context.Context, namespace string, podLabels map[string]string) []string {
	var list skiffcorev1.ServiceList
	if err := r.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing Services for a pod", "namespace", namespace)
		return nil
	}
	var names []string
	for i := range list.Items {
		sel := list.Items[i].Spec.Selector
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
			names = append(names, list.Items[i].Name)
		}
	}
	return names
}
