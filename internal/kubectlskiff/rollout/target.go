package rollout

import (
	"fmt"
	"strings"

	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// Kind is a workload kind that rolls out: skiff's Deployment, StatefulSet
// or DaemonSet.
type Kind string

// The kinds rollout works on.
const (
	Deployment  Kind = "deployment"
	StatefulSet Kind = "statefulset"
	DaemonSet   Kind = "daemonset"
)

// kindNames maps every name kubectl accepts for a kind (singular, plural,
// short, group-qualified) to the kind; skiff's own short names too.
var kindNames = map[string]Kind{}

func init() {
	for kind, names := range map[Kind][]string{
		Deployment:  {"deployment", "deployments", "deploy", "sdeploy"},
		StatefulSet: {"statefulset", "statefulsets", "sts", "ssts"},
		DaemonSet:   {"daemonset", "daemonsets", "ds", "sds"},
	} {
		for _, n := range names {
			kindNames[n] = kind
			kindNames[n+".apps"] = kind
			kindNames[n+".apps.skiff.dev"] = kind
		}
	}
}

// Target is one object a rollout command acts on.
type Target struct {
	Kind Kind
	Name string
}

// ParseTargets reads kubectl's two ways of naming objects: TYPE/NAME
// arguments ("deployment/web", "sts/db"), or a TYPE followed by names
// ("deploy web api").
func ParseTargets(args []string) ([]Target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("required resource not specified: name a deployment, statefulset or daemonset, as deployment/NAME or deployment NAME")
	}
	parsed, err := cli.ParseResourceArgs(args, "kubectl skiff rollout status deployment/web")
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(parsed))
	for _, p := range parsed {
		kind, err := parseKind(p.Type)
		if err != nil {
			return nil, err
		}
		if p.Name == "" {
			return nil, fmt.Errorf("a name is required after %q: %s NAME", p.Type, p.Type)
		}
		out = append(out, Target{Kind: kind, Name: p.Name})
	}
	return out, nil
}

func parseKind(s string) (Kind, error) {
	if k, ok := kindNames[strings.ToLower(s)]; ok {
		return k, nil
	}
	return "", fmt.Errorf("no rollout for resource type %q: rollout works on deployments (deploy), statefulsets (sts) and daemonsets (ds)", s)
}
