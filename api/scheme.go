// Package api is the root of skiff's API groups. It registers them all at
// once and maps upstream apiVersions onto skiff's.
package api

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffbatchv1 "skiff.dev/skiff/api/batch/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// AddToScheme registers every skiff group with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		skiffcorev1.AddToScheme,
		skiffappsv1.AddToScheme,
		skiffbatchv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// NewScheme returns a scheme with the built-in kinds that skiff uses
// (ConfigMaps, Secrets, Events, Leases, ControllerRevisions...) and every
// skiff kind.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(AddToScheme(s))
	return s
}
