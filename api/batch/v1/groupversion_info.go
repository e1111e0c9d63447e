// Package v1 holds skiff's batch.skiff.dev/v1 API: the upstream batch kinds as
// CustomResourceDefinitions, with spec and status reused from k8s.io/api so
// that an upstream manifest applies after changing only its apiVersion.
//
// +kubebuilder:object:generate=true
// +groupName=batch.skiff.dev
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "batch.skiff.dev", Version: "v1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
