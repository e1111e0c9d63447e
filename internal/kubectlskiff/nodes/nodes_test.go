package nodes_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/clitest"
)

// TestCordonUncordon runs cordon and uncordon on real Node objects and
// reads spec.unschedulable back: each command says what it did, a second
// one says "already", several nodes are taken at once, and a missing node
// is an error that does not stop the others. --dry-run says the same,
// marked, and changes nothing.
func TestCordonUncordon(t *testing.T) {
	ctx := context.Background()
	var nodes []*skiffcorev1.Node
	for _, name := range []string{"cordon-a", "cordon-b"} {
		n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := env.Client.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, n) })
		nodes = append(nodes, n)
	}
	p := clitest.New(t, env, "default")
	unschedulable := func() []bool {
		var out []bool
		for _, n := range nodes {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(n), n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n.Spec.Unschedulable)
		}
		return out
	}

	steps := []struct {
		args []string
		out  string
		err  string
		want []bool // spec.unschedulable of cordon-a, cordon-b afterwards
	}{
		{[]string{"cordon", "cordon-a", "--dry-run=client"}, "node.core.skiff.dev/cordon-a cordoned (dry run)\n", "", []bool{false, false}},
		{[]string{"cordon", "cordon-a", "--dry-run=server"}, "node.core.skiff.dev/cordon-a cordoned (server dry run)\n", "", []bool{false, false}},
		{[]string{"cordon", "cordon-a"}, "node.core.skiff.dev/cordon-a cordoned\n", "", []bool{true, false}},
		{[]string{"uncordon", "cordon-a", "cordon-b", "--dry-run"}, "node.core.skiff.dev/cordon-a uncordoned (dry run)\nnode.core.skiff.dev/cordon-b already uncordoned (dry run)\n", "", []bool{true, false}},
		{[]string{"uncordon", "cordon-a", "--dry-run=server"}, "node.core.skiff.dev/cordon-a uncordoned (server dry run)\n", "", []bool{true, false}},
		{[]string{"cordon", "cordon-a", "cordon-b"}, "node.core.skiff.dev/cordon-a already cordoned\nnode.core.skiff.dev/cordon-b cordoned\n", "", []bool{true, true}},
		{[]string{"uncordon", "cordon-b", "missing", "cordon-a"}, "node.core.skiff.dev/cordon-b uncordoned\nnode.core.skiff.dev/cordon-a uncordoned\n", `"missing" not found`, []bool{false, false}},
		{[]string{"uncordon", "cordon-a"}, "node.core.skiff.dev/cordon-a already uncordoned\n", "", []bool{false, false}},
		{[]string{"cordon"}, "", "node name required", []bool{false, false}},
	}
	for _, s := range steps {
		out, _, err := p.Run(s.args...)
		if out != s.out {
			t.Errorf("%v printed %q, want %q", s.args, out, s.out)
		}
		switch {
		case s.err == "" && err != nil:
			t.Errorf("%v: %v", s.args, err)
		case s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)):
			t.Errorf("%v: err = %v, want one containing %q", s.args, err, s.err)
		}
		if got := unschedulable(); got[0] != s.want[0] || got[1] != s.want[1] {
			t.Errorf("after %v spec.unschedulable = %v, want %v", s.args, got, s.want)
		}
	}
}
