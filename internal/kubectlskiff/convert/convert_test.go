package convert

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/config/crd"
)

// update rewrites the golden files: go test ./internal/kubectlskiff/convert -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func loadSchemas(t *testing.T) Schemas {
	t.Helper()
	s, err := LoadSchemas(crd.Bases, "bases/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConvertGolden converts each testdata/NAME.in.(yaml|json) and compares
// the output with NAME.out.yaml and the warnings with NAME.warnings.txt, so
// that a reviewer reads what each upstream manifest becomes.
func TestConvertGolden(t *testing.T) {
	schemas := loadSchemas(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.in.*"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(in), filepath.Ext(in)), ".in")
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Convert(f, schemas)
			if err != nil {
				t.Fatal(err)
			}
			warnings := ""
			for _, w := range res.Warnings {
				warnings += w + "\n"
			}
			golden(t, filepath.Join("testdata", name+".out.yaml"), string(res.YAML))
			golden(t, filepath.Join("testdata", name+".warnings.txt"), warnings)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestUnsupportedFields checks the detection on its own: what the schema
// lacks is reported with its path and removed; what it has, including
// metadata and maps of free keys, is kept.
func TestUnsupportedFields(t *testing.T) {
	s := loadSchemas(t)[schema.GroupVersionKind{Group: "apps.skiff.dev", Version: "v1", Kind: "Deployment"}]
	if s == nil {
		t.Fatal("no Deployment schema among the embedded CRDs")
	}
	cases := []struct {
		name string
		obj  string // spec, as JSON-ish YAML
		want []string
	}{
		{"all known", `{spec: {replicas: 1, template: {metadata: {labels: {any-key: v}}, spec: {nodeSelector: {free: form}, containers: [{name: a, image: b}]}}}}`, nil},
		{"unknown top-level spec field", `{spec: {replicas: 1, surge: 2}}`, []string{"spec.surge"}},
		{"unknown in a list item", `{spec: {template: {spec: {containers: [{name: a}, {name: b, colour: red}]}}}}`, []string{"spec.template.spec.containers[1].colour"}},
		{"unknown root field", `{spec: {}, extra: 1}`, []string{"extra"}},
		{"unknown metadata is the apiserver's business", `{metadata: {name: x, labels: {a: b}}, spec: {}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := parseYAML(t, c.obj)
			got := unsupportedFields(obj, s)
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", got, c.want)
			}
			for _, path := range got {
				if strings.Contains(string(mustYAML(t, obj)), path[strings.LastIndex(path, ".")+1:]+":") {
					t.Errorf("%s was reported but left in the object", path)
				}
			}
		})
	}
}
