package dns

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// Source gives the server the cluster's current Services, EndpointSlices
// and Pods. The server asks it when it rebuilds its zone (on Server.Changed,
// and every Config.Refresh), never per query.
type Source interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// ReaderSource is a Source that lists the three kinds through a
// client.Reader: the node agent's cache, or a direct client.
type ReaderSource struct {
	Reader client.Reader
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=services;endpointslices;pods,verbs=get;list;watch

// Snapshot lists every Service, EndpointSlice and Pod.
func (s ReaderSource) Snapshot(ctx context.Context) (*Snapshot, error) {
	var (
		svcs   skiffcorev1.ServiceList
		slices skiffcorev1.EndpointSliceList
		pods   skiffcorev1.PodList
	)
	for what, list := range map[string]client.ObjectList{"Services": &svcs, "EndpointSlices": &slices, "Pods": &pods} {
		if err := s.Reader.List(ctx, list); err != nil {
			return nil, fmt.Errorf("listing %s for the cluster DNS: %w", what, err)
		}
	}
	return &Snapshot{Services: svcs.Items, EndpointSlices: slices.Items, Pods: pods.Items}, nil
}

// NotifyOnChange calls changed whenever the informers of a cache see a
// Service, EndpointSlice or Pod added, updated or deleted, so that a server
// reading a ReaderSource over that cache rebuilds its zone at once instead
// of at its next refresh: pass Server.Changed.
func NotifyOnChange(ctx context.Context, informers cache.Informers, changed func()) error {
	every := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { changed() },
		UpdateFunc: func(any, any) { changed() },
		DeleteFunc: func(any) { changed() },
	}
	// A pod's hostname and subdomain never change, and its status does not
	// matter here: only its coming and going does.
	comings := toolscache.ResourceEventHandlerFuncs{AddFunc: every.AddFunc, DeleteFunc: every.DeleteFunc}
	for obj, handler := range map[client.Object]toolscache.ResourceEventHandler{
		&skiffcorev1.Service{}: every, &skiffcorev1.EndpointSlice{}: every, &skiffcorev1.Pod{}: comings,
	} {
		inf, err := informers.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T for the cluster DNS: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("watching %T for the cluster DNS: %w", obj, err)
		}
	}
	return nil
}
