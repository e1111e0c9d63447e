package cli

import (
	"fmt"
	"strings"
)

// ResourceArg is one object (or, with no Name, every object of a type)
// that a command's arguments name.
type ResourceArg struct {
	// Type is the type as typed: "deployment", "deploy", "sts", ...
	Type string
	// Name is the object's name; empty for a TYPE given alone.
	Name string
	// Separate is true when the type came as an argument of its own
	// ("deploy web") rather than as TYPE/NAME ("deploy/web").
	Separate bool
}

// ParseResourceArgs reads kubectl's two ways of naming objects: TYPE/NAME
// arguments ("deployment/web", "sts/db"), or a TYPE followed by names
// ("deploy web api"), or a TYPE alone. example is the command's own
// TYPE/NAME example, for the message that refuses mixing the two forms.
// args must not be empty: each command says in its own words what is
// missing.
func ParseResourceArgs(args []string, example string) ([]ResourceArg, error) {
	if !strings.Contains(args[0], "/") {
		if len(args) == 1 {
			return []ResourceArg{{Type: args[0], Separate: true}}, nil
		}
		out := make([]ResourceArg, 0, len(args)-1)
		for _, name := range args[1:] {
			if strings.Contains(name, "/") {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. '%s')", example)
			}
			out = append(out, ResourceArg{Type: args[0], Name: name, Separate: true})
		}
		return out, nil
	}
	out := make([]ResourceArg, 0, len(args))
	for _, arg := range args {
		typ, name, ok := strings.Cut(arg, "/")
		if !ok || name == "" {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name, got %q", arg)
		}
		out = append(out, ResourceArg{Type: typ, Name: name})
	}
	return out, nil
}
