package api_test

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"skiff.dev/skiff/api"
)

// TestUpstreamManifestsApplyAndReadBackEqual is skiff's central promise:
// realistic upstream manifests, changed only in their apiVersion, apply with
// kubectl and come back with every field they set.
func TestUpstreamManifestsApplyAndReadBackEqual(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "upstream", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no upstream manifests in testdata/upstream: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			ns := newNamespace(t)
			objs := toSkiff(readManifests(t, file))
			if !anySkiff(objs) {
				t.Fatalf("%s holds no kind that skiff serves", file)
			}
			// Each test applies into its own namespace, whatever the manifest says.
			for _, o := range objs {
				o.SetNamespace(ns)
			}
			if out, err := env.Kubectl("apply", "-n", ns, "-f", writeManifests(t, objs)); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, o := range objs {
				got := readBack(t, ns, o)
				for _, field := range []string{"spec", "data", "addressType", "endpoints", "ports"} {
					if want, ok := o.Object[field]; ok {
						for _, d := range subsetDiff(o.GetKind()+"."+field, want, got.Object[field]) {
							t.Error(d)
						}
					}
				}
				for _, d := range subsetDiff(o.GetKind()+".metadata.labels", o.GetLabels(), got.GetLabels()) {
					t.Error(d)
				}
			}
		})
	}
}

// anySkiff reports whether any object is of a skiff kind.
func anySkiff(objs []*unstructured.Unstructured) bool {
	for _, o := range objs {
		if api.IsSkiffAPIVersion(o.GetAPIVersion()) {
			return true
		}
	}
	return false
}
