package rollout

import (
	"fmt"
	"strings"
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
	if !strings.Contains(args[0], "/") {
		kind, err := parseKind(args[0])
		if err != nil {
			return nil, err
		}
		if len(args) == 1 {
			return nil, fmt.Errorf("a name is required after %q: %s NAME", args[0], args[0])
		}
		var out []Target
		for _, name := range args[1:] {
			if strings.Contains(name, "/") {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl skiff rollout status deployment/web')")
			}
			out = append(out, Target{Kind: kind, Name: name})
		}
		return out, nil
	}
	var out []Target
	for _, arg := range args {
		typ, name, ok := strings.Cut(arg, "/")
		if !ok || name == "" {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name, got %q", arg)
		}
		kind, err := parseKind(typ)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{Kind: kind, Name: name})
	}
	return out, nil
}

func parseKind(s string) (Kind, error) {
	if k, ok := kindNames[strings.ToLower(s)]; ok {
		return k, nil
	}
	return "", fmt.Errorf("no rollout for resource type %q: rollout works on deployments (deploy), statefulsets (sts) and daemonsets (ds)", s)
}
