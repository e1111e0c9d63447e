package main

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestMatchPath(t *testing.T) {
	cases := []struct {
		path    []string
		pattern string
		want    bool
	}{
		{[]string{"spec", "replicas"}, "spec.replicas", true},
		{[]string{"spec", "template", "spec", "replicas"}, "spec.replicas", false},
		{[]string{"spec", "containers[]", "ports[]", "protocol"}, "**.ports[].protocol", true},
		{[]string{"ports[]", "protocol"}, "**.ports[].protocol", true},
		{[]string{"spec", "hostports[]", "protocol"}, "**.ports[].protocol", false},
	}
	for _, tc := range cases {
		if got := matchPath(tc.path, tc.pattern); got != tc.want {
			t.Errorf("matchPath(%v, %q) = %v, want %v", tc.path, tc.pattern, got, tc.want)
		}
	}
}

// podCRD is a tiny CRD whose schema embeds a PodSpec-shaped object in a list
// and has a map-typed list whose key has neither a default nor a required mark.
func podCRD() *apiextensionsv1.CustomResourceDefinition {
	str := apiextensionsv1.JSONSchemaProps{Type: "string"}
	podSpec := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"containers": {Type: "array"}, "dnsPolicy": str, "restartPolicy": str,
		"schedulerName": str, "terminationGracePeriodSeconds": {Type: "integer"},
		"enableServiceLinks": {Type: "boolean"}, "securityContext": {Type: "object"},
	}}
	conditions := apiextensionsv1.JSONSchemaProps{
		Type:         "array",
		XListType:    ptr("map"),
		XListMapKeys: []string{"type"},
		Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"type": str, "status": str},
		}},
	}
	root := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"replicas": {Type: "integer"},
			"templates": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": podSpec},
			}}},
		}},
		"status": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"conditions": conditions}},
	}}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	crd.Spec.Names.Kind = "ReplicaSet"
	crd.Spec.Versions = []apiextensionsv1.CustomResourceDefinitionVersion{{
		Name: "v1", Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &root},
	}}
	return crd
}

func TestApplyDefaults(t *testing.T) {
	crd := podCRD()
	hits, err := applyDefaults(crd, rules)
	if err != nil {
		t.Fatal(err)
	}
	root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	spec := root.Properties["spec"]
	podSpec := spec.Properties["templates"].Items.Schema.Properties["spec"]
	cases := []struct {
		name string
		node apiextensionsv1.JSONSchemaProps
		want string
	}{
		{"replicas by path and kind", spec.Properties["replicas"], "1"},
		{"restartPolicy by shape, inside a list", podSpec.Properties["restartPolicy"], `"Always"`},
		{"dnsPolicy by shape", podSpec.Properties["dnsPolicy"], `"ClusterFirst"`},
		{"securityContext as an empty object", podSpec.Properties["securityContext"], `{}`},
	}
	for _, tc := range cases {
		if tc.node.Default == nil || string(tc.node.Default.Raw) != tc.want {
			t.Errorf("%s: default = %v, want %s", tc.name, tc.node.Default, tc.want)
		}
	}
	if len(podSpec.Properties["restartPolicy"].Enum) != 3 {
		t.Errorf("restartPolicy enum = %v, want Always, OnFailure, Never", podSpec.Properties["restartPolicy"].Enum)
	}
	if got := root.Properties["status"].Properties["conditions"].Items.Schema.Required; len(got) != 1 || got[0] != "type" {
		t.Errorf("list map key 'type' of status.conditions: required = %v, want [type]", got)
	}
	if len(hits) == 0 {
		t.Error("no rule reported a hit")
	}
}

func TestRulesOnlyForOtherKindsDoNotApply(t *testing.T) {
	crd := podCRD()
	crd.Spec.Names.Kind = "Job"
	if _, err := applyDefaults(crd, rules); err != nil {
		t.Fatal(err)
	}
	if d := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["replicas"].Default; d != nil {
		t.Errorf("a Job got the replicas default of ReplicaSet: %s", d.Raw)
	}
}
