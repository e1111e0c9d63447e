package main

import apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

// Upstream's limits on labels: a value is at most 63 characters, and a key
// at most a 253-character prefix, a slash and a 63-character name.
const (
	maxLabelValue = 63
	maxLabelKey   = 253 + 1 + 63
)

// skiff's own limits on label selectors. Upstream sets none, but the
// apiserver prices a CEL rule by the largest input it could see, and without
// a bound the "selector matches template labels" rule is refused as too
// costly. No real selector comes near these.
const (
	maxSelectorLabels      = 64
	maxSelectorExpressions = 64
	maxSelectorValues      = 256
	maxScheduleLength      = 256
)

// limits bound the schema nodes that skiff's CEL rules read.
var limits = []rule{
	{shape: shapeLabelSelector, field: "matchLabels", edit: boundLabelMap(maxSelectorLabels)},
	{shape: shapeLabelSelector, field: "matchExpressions", edit: boundSelectorExpressions},
	{shape: shapeObjectMeta, field: "labels", edit: boundLabelMap(0)},
	// A cron schedule is a line of five short fields; the bound lets the
	// apiserver afford the rule that parses it.
	{kinds: []string{"CronJob"}, path: "spec.schedule", edit: func(p *apiextensionsv1.JSONSchemaProps) { p.MaxLength = ptr(int64(maxScheduleLength)) }},
	// Container names are DNS labels upstream, so at most 63 characters.
	{shape: shapeContainer, field: "name", edit: func(p *apiextensionsv1.JSONSchemaProps) { p.MaxLength = ptr(int64(63)) }},
}

var (
	shapeLabelSelector = []string{"matchLabels", "matchExpressions"}
	shapeObjectMeta    = []string{"labels", "annotations", "finalizers", "name"}
)

// boundLabelMap limits a map of labels to upstream's key and value sizes,
// and to at most n entries when n > 0.
func boundLabelMap(n int64) func(*apiextensionsv1.JSONSchemaProps) {
	return func(p *apiextensionsv1.JSONSchemaProps) {
		if n > 0 {
			p.MaxProperties = &n
		}
		if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
			p.AdditionalProperties.Schema.MaxLength = ptr(int64(maxLabelValue))
		}
	}
}

// boundSelectorExpressions limits matchExpressions and their values.
func boundSelectorExpressions(p *apiextensionsv1.JSONSchemaProps) {
	p.MaxItems = ptr(int64(maxSelectorExpressions))
	if p.Items == nil || p.Items.Schema == nil {
		return
	}
	expr := p.Items.Schema
	if key, ok := expr.Properties["key"]; ok {
		key.MaxLength = ptr(int64(maxLabelKey))
		expr.Properties["key"] = key
	}
	if values, ok := expr.Properties["values"]; ok {
		values.MaxItems = ptr(int64(maxSelectorValues))
		if values.Items != nil && values.Items.Schema != nil {
			values.Items.Schema.MaxLength = ptr(int64(maxLabelValue))
		}
		expr.Properties["values"] = values
	}
}

func ptr[T any](v T) *T { return &v }
