package rollout

import (
	"bytes"
	"fmt"
	"io"
	"text/tabwriter"

	"k8s.io/kubectl/pkg/describe"
)

// tabbed renders what write prints, tab-separated, in aligned columns as
// kubectl's tables are.
func tabbed(write func(w io.Writer)) string {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	write(w)
	w.Flush()
	return buf.String()
}

// historyTable renders revisions as kubectl's rollout history does: a
// REVISION and CHANGE-CAUSE table, "<none>" for a revision made without a
// recorded cause.
func historyTable(revs []revision) string {
	return tabbed(func(w io.Writer) {
		fmt.Fprintln(w, "REVISION\tCHANGE-CAUSE")
		for _, r := range revs {
			cause := r.ChangeCause
			if cause == "" {
				cause = "<none>"
			}
			fmt.Fprintf(w, "%d\t%s\n", r.Number, cause)
		}
	})
}

// templateView renders one revision's pod template as kubectl's rollout
// history --revision does, with kubectl describe's "Pod Template:"
// section. The change cause is shown among the template's annotations, as
// upstream does.
func templateView(r revision) string {
	t := r.Template.DeepCopy()
	if r.ChangeCause != "" {
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[changeCauseAnnotation] = r.ChangeCause
	}
	return tabbed(func(w io.Writer) {
		describe.DescribePodTemplate(t, describe.NewPrefixWriter(w))
	})
}
