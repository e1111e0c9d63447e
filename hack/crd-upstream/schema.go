package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// rule changes one schema node: it sets value as the node's default, or runs
// edit on it. Exactly one of shape and path is set: shape matches a node by
// its properties (and field names the property to change), path matches a
// dotted path from the root of the kinds listed ("[]" marks list items).
type rule struct {
	kinds []string
	shape []string
	path  string
	field string
	value any
	edit  func(*apiextensionsv1.JSONSchemaProps)
}

// applyDefaults sets every rule's default in the CRD's schemas and returns
// how many it set, so that a rule which matches nothing can be reported.
func applyDefaults(crd *apiextensionsv1.CustomResourceDefinition, rules []rule) (map[int]int, error) {
	hits := map[int]int{}
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		if err := walk(v.Schema.OpenAPIV3Schema, nil, func(node *apiextensionsv1.JSONSchemaProps, path []string) error {
			return applyToNode(crd.Spec.Names.Kind, node, path, rules, hits)
		}); err != nil {
			return nil, err
		}
		if err := walk(v.Schema.OpenAPIV3Schema, nil, requireListMapKeys); err != nil {
			return nil, err
		}
	}
	return hits, nil
}

// applyToNode sets the defaults of every rule that matches one schema node.
func applyToNode(kind string, node *apiextensionsv1.JSONSchemaProps, path []string, rules []rule, hits map[int]int) error {
	for i, r := range rules {
		if len(r.kinds) > 0 && !slices.Contains(r.kinds, kind) {
			continue
		}
		edit := r.edit
		if edit == nil {
			raw, err := json.Marshal(r.value)
			if err != nil {
				return fmt.Errorf("default for %s: %w", strings.Join(path, "."), err)
			}
			edit = func(p *apiextensionsv1.JSONSchemaProps) { p.Default = &apiextensionsv1.JSON{Raw: raw} }
		}
		if r.change(node, path, edit) {
			hits[i]++
		}
	}
	return nil
}

// change edits node, or one of its properties, if node is where the rule
// applies.
func (r rule) change(node *apiextensionsv1.JSONSchemaProps, path []string, edit func(*apiextensionsv1.JSONSchemaProps)) bool {
	if r.path != "" {
		if !matchPath(path, r.path) {
			return false
		}
		edit(node)
		return true
	}
	for _, p := range r.shape {
		if _, ok := node.Properties[p]; !ok {
			return false
		}
	}
	child, ok := node.Properties[r.field]
	if !ok {
		return false
	}
	// Properties holds values, not pointers: change a copy and store it back.
	edit(&child)
	node.Properties[r.field] = child
	return true
}

// matchPath reports whether a node's path equals pattern, where a pattern
// starting with "**." matches any path that ends with the rest.
func matchPath(path []string, pattern string) bool {
	joined := strings.Join(path, ".")
	if rest, ok := strings.CutPrefix(pattern, "**."); ok {
		return joined == rest || strings.HasSuffix(joined, "."+rest)
	}
	return joined == pattern
}

// requireListMapKeys marks the keys of every map-typed list as required in
// its items, unless they have a default. The apiserver insists on one or the
// other, and some k8s.io/api types (status conditions) declare neither.
func requireListMapKeys(node *apiextensionsv1.JSONSchemaProps, _ []string) error {
	if node.Items == nil || node.Items.Schema == nil {
		return nil
	}
	items := node.Items.Schema
	for _, key := range node.XListMapKeys {
		if p, ok := items.Properties[key]; ok && p.Default == nil && !slices.Contains(items.Required, key) {
			items.Required = append(items.Required, key)
		}
	}
	return nil
}

// walk visits every object node of a schema with its dotted path.
func walk(node *apiextensionsv1.JSONSchemaProps, path []string, visit func(*apiextensionsv1.JSONSchemaProps, []string) error) error {
	if err := visit(node, path); err != nil {
		return err
	}
	for name, child := range node.Properties {
		if err := walk(&child, append(slices.Clone(path), name), visit); err != nil {
			return err
		}
		node.Properties[name] = child
	}
	if node.Items != nil && node.Items.Schema != nil && len(path) > 0 {
		itemsPath := slices.Clone(path)
		itemsPath[len(itemsPath)-1] += "[]"
		return walk(node.Items.Schema, itemsPath, visit)
	}
	return nil
}
