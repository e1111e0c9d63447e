package controllers

import (
	"strings"
	"testing"
)

func TestSelected(t *testing.T) {
	cases := []struct {
		list []string
		name string
		want bool
	}{
		{nil, "scheduler", true},
		{[]string{"*"}, "scheduler", true},
		{[]string{"*", "-scheduler"}, "scheduler", false},
		{[]string{"*", "-scheduler"}, "replicaset", true},
		{[]string{"scheduler"}, "scheduler", true},
		{[]string{"scheduler"}, "replicaset", false},
		{[]string{"-scheduler"}, "replicaset", false},
	}
	for _, tc := range cases {
		if got := selected(tc.name, tc.list); got != tc.want {
			t.Errorf("selected(%q, %q) = %v, want %v", tc.name, tc.list, got, tc.want)
		}
	}
}

func TestCheckSelectionNamesTheUnknownController(t *testing.T) {
	if err := checkSelection([]string{"*", "-scheduler", "replicaset"}); err != nil {
		t.Errorf("a valid selection was refused: %v", err)
	}
	err := checkSelection([]string{"*", "-shceduler"})
	if err == nil || !strings.Contains(err.Error(), `"shceduler"`) || !strings.Contains(err.Error(), "scheduler") {
		t.Errorf("a misspelt controller gave %v, want an error naming it and the known ones", err)
	}
}
