package volumes

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x-$(A)-$(B)-y", "x-1-two-y"},
		{"$(EMPTY)|", "|"},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$1"},
		{"$$", "$"},
		{"$A", "$A"},
		{"cost: 5$", "cost: 5$"},
		{"$(A", "$(A"},
		{"$()", "$()"},
		{"$(A)$(A)", "11"},
	} {
		if got := expand(tc.in, lookup); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExpandCommand(t *testing.T) {
	env := []string{"GREETING=hello", "NAME=skiff", "EQ=a=b"}
	got := ExpandCommand([]string{"echo", "$(GREETING), $(NAME)", "$$(NAME)", "$(EQ)", "$(MISSING)"}, env)
	want := []string{"echo", "hello, skiff", "$(NAME)", "a=b", "$(MISSING)"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ExpandCommand = %q, want %q", got, want)
	}
}
