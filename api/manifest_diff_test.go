package api_test

import "testing"

// TestSubsetDiff checks the comparison that the round-trip test relies on:
// extra fields are fine, missing or changed ones are not.
func TestSubsetDiff(t *testing.T) {
	cases := []struct {
		name      string
		want, got any
		diffs     int
	}{
		{"equal", map[string]any{"a": 1}, map[string]any{"a": float64(1)}, 0},
		{"defaults added", map[string]any{"a": "x"}, map[string]any{"a": "x", "b": "default"}, 0},
		{"field pruned", map[string]any{"a": "x", "b": "y"}, map[string]any{"a": "x"}, 1},
		{"value changed", map[string]any{"a": []any{"x", "y"}}, map[string]any{"a": []any{"x", "z"}}, 1},
		{"list shortened", map[string]any{"a": []any{"x", "y"}}, map[string]any{"a": []any{"x"}}, 1},
		{"nested pruned", map[string]any{"a": map[string]any{"b": map[string]any{"c": true}}}, map[string]any{"a": map[string]any{"b": map[string]any{}}}, 1},
	}
	for _, tc := range cases {
		if got := subsetDiff("x", tc.want, tc.got); len(got) != tc.diffs {
			t.Errorf("%s: %d differences %v, want %d", tc.name, len(got), got, tc.diffs)
		}
	}
}
