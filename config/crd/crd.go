// Package crd embeds skiff's generated CustomResourceDefinitions, so that
// tools such as `kubectl skiff convert` know skiff's schemas offline.
package crd

import "embed"

// Bases holds config/crd/bases/*.yaml, as controller-gen writes them.
//
//go:embed bases/*.yaml
var Bases embed.FS
