// Package convert is `kubectl skiff convert`: it turns upstream manifests
// into skiff's, changing the apiVersion of the kinds skiff serves, and
// reports every field skiff's schemas do not have, which the apiserver
// would drop (or, with kubectl's strict field validation, refuse).
//
// Convert is pure: manifests in, manifests and warnings out. The command
// only reads files and prints.
package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/api"
)

// Result is a conversion's output: the manifests as YAML documents, and a
// warning for each field skiff would drop.
type Result struct {
	YAML     []byte
	Warnings []string
}

// Convert reads a stream of manifests (YAML documents or JSON objects, a
// List among them) and returns them converted to skiff's apiVersions, with
// the fields skiff's schemas lack removed and reported.
func Convert(in io.Reader, schemas Schemas) (Result, error) {
	var res Result
	var docs [][]byte
	dec := utilyaml.NewYAMLOrJSONDecoder(in, 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("reading manifest %d: %w", len(docs)+1, err)
		}
		if len(obj) == 0 {
			continue // an empty document
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.IsList() {
			err = u.EachListItem(func(item runtime.Object) error {
				res.Warnings = append(res.Warnings, convertObject(item.(*unstructured.Unstructured), schemas)...)
				return nil
			})
		} else {
			res.Warnings = append(res.Warnings, convertObject(u, schemas)...)
		}
		if err != nil {
			return Result{}, err
		}
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			return Result{}, err
		}
		docs = append(docs, data)
	}
	res.YAML = bytes.Join(docs, []byte("---\n"))
	return res, nil
}

// convertObject moves one object to skiff's apiVersion when skiff serves
// its kind, and prunes it against skiff's schema, returning a warning per
// field pruned. Other kinds (ConfigMap, Secret...) stay as they are.
func convertObject(u *unstructured.Unstructured, schemas Schemas) []string {
	if v, ok := api.SkiffAPIVersion(u.GetAPIVersion(), u.GetKind()); ok {
		u.SetAPIVersion(v)
	}
	s, ok := schemas[u.GroupVersionKind()]
	if !ok {
		return nil
	}
	var warnings []string
	for _, field := range unsupportedFields(u.Object, s) {
		warnings = append(warnings, fmt.Sprintf("%s/%s: field %s is not supported by skiff and would be dropped",
			strings.ToLower(u.GetKind()), u.GetName(), field))
	}
	return warnings
}

// unsupportedFields prunes obj in place as the apiserver would, and returns
// the paths of the fields it removed.
func unsupportedFields(obj map[string]any, s *structuralschema.Structural) []string {
	return structuralpruning.PruneWithOptions(obj, s, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
}
