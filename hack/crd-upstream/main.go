// Command crd-upstream writes what upstream Kubernetes checks and defaults in
// Go code into skiff's generated CRDs: controller-gen sees only the markers
// in k8s.io/api. It sets upstream's defaults, and the size limits that let
// the apiserver afford skiff's CEL rules. It runs right after controller-gen
// in `make manifests`.
//
// Usage: crd-upstream DIR
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crd-upstream DIR (the directory of generated CRD YAML files)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "crd-upstream:", err)
		os.Exit(1)
	}
}

// rules are every change, defaults first.
var rules = slices.Concat(upstreamDefaults, enums, limits)

// run defaults every CRD in dir and fails if a rule matched no CRD at all,
// which means k8s.io/api renamed a field and the rule silently stopped working.
func run(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s: run controller-gen first", dir)
	}
	used := map[int]int{}
	for _, f := range files {
		hits, err := defaultFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for i, n := range hits {
			used[i] += n
		}
	}
	for i, r := range rules {
		if used[i] == 0 {
			return fmt.Errorf("default rule %d (%s%v.%s) matched nothing: update hack/crd-upstream", i, r.path, r.shape, r.field)
		}
	}
	return nil
}

// defaultFile rewrites one CRD file with the defaults applied.
func defaultFile(path string) (map[int]int, error) {
	in, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(bytes.TrimPrefix(in, []byte("---\n")), &crd); err != nil {
		return nil, err
	}
	hits, err := applyDefaults(&crd, rules)
	if err != nil {
		return nil, err
	}
	out, err := marshalWithoutStatus(&crd)
	if err != nil {
		return nil, err
	}
	return hits, os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

// marshalWithoutStatus renders the CRD as controller-gen does: a manifest
// with no status and no creationTimestamp, which the typed struct would add.
func marshalWithoutStatus(crd *apiextensionsv1.CustomResourceDefinition) ([]byte, error) {
	j, err := json.Marshal(crd)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, err
	}
	delete(obj, "status")
	if meta, ok := obj["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	return yaml.Marshal(obj)
}
