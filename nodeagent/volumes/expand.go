package volumes

import "strings"

// expand replaces $(VAR) in s by lookup(VAR), with upstream's semantics
// (k8s.io/kubernetes third_party/forked/golang/expansion): a reference to an
// unknown variable stays as written, "$$" is a literal "$" (so "$$(VAR)"
// gives "$(VAR)"), and a "$" that starts no reference is kept.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 { // unterminated: keep "$(" and go on after it
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ExpandCommand expands $(VAR) references in a container's command or args
// with its resolved environment (as ResolveEnv returns it, "K=V"), as the
// kubelet does before it creates the container.
func ExpandCommand(cmd []string, env []string) []string {
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	lookup := func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	out := make([]string, len(cmd))
	for i, arg := range cmd {
		out[i] = expand(arg, lookup)
	}
	return out
}
