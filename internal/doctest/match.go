package doctest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Normalizer erases from a line what differs between the page and a real
// run, through regexp replacements applied in order. The zero Normalizer
// only folds blanks.
type Normalizer struct {
	rules []replacement
}

type replacement struct {
	re   *regexp.Regexp
	with string
	// wholeToken applies re only to whitespace-separated tokens it matches
	// entirely, so "5s" is an age but "8080/TCP" and "64Mi" are left alone.
	wholeToken bool
}

// generated is the alphabet of Kubernetes' random name suffixes and hashes
// (k8s.io/apimachinery/pkg/util/rand): no vowels, so that no word is spelled.
const generated = `[bcdfghjklmnpqrstvwxz2456789]`

// DefaultNormalizer erases what changes on every run of a cluster:
// timestamps, UIDs, IPs, generated name suffixes and ages.
func DefaultNormalizer() Normalizer {
	return Normalizer{rules: []replacement{
		{re: regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?`), with: "TIME"},
		{re: regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`), with: "UID"},
		{re: regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}:\d{1,5}\b`), with: "IP:PORT"},
		{re: regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`), with: "IP"},
		// CronJob jobs are named after their scheduled minute. It runs
		// before the hash rules so that such a suffix becomes -N whether or
		// not its digits happen to be in the hash alphabet.
		{re: regexp.MustCompile(`\b-\d{8,}\b`), with: "-N"},
		{re: regexp.MustCompile(`\b-` + generated + `{6,10}\b`), with: "-HASH"},
		{re: regexp.MustCompile(`\b-` + generated + `{5}\b`), with: "-XXXXX"},
		{re: regexp.MustCompile(`^(<invalid>|(\d+(\.\d+)?(ms|s|m|h|d|y))+)$`), with: "AGE", wholeToken: true},
	}}
}

// With returns n with one more replacement, applied after the others, for
// what only the caller knows: its node names, say.
func (n Normalizer) With(re *regexp.Regexp, with string) Normalizer {
	n.rules = append(slices.Clip(n.rules), replacement{re: re, with: with})
	return n
}

var (
	blanks = regexp.MustCompile(`[ \t]+`)
	tokens = regexp.MustCompile(`[^ \t]+`)
)

// Normalize applies the replacements to line, then collapses runs of blanks
// (column widths follow the longest name) and trims it at the right.
func (n Normalizer) Normalize(line string) string {
	for _, r := range n.rules {
		if r.wholeToken {
			line = tokens.ReplaceAllStringFunc(line, func(tok string) string {
				if r.re.MatchString(tok) {
					return r.with
				}
				return tok
			})
			continue
		}
		line = r.re.ReplaceAllString(line, r.with)
	}
	return strings.TrimRight(blanks.ReplaceAllString(line, " "), " ")
}

// ellipsis is a shown line that stands for any number of real lines; at the
// end of a line it stands for the rest of it.
const ellipsis = "..."

// Match says whether got, a command's real output, looks like want, the
// output the page shows, after normalizing both with n. Trailing empty lines
// are ignored on both sides, so got may be split from output that ends in a
// newline. The error shows both sides and their first difference.
func Match(want, got []string, n Normalizer) error {
	want = normalizeAll(dropTrailingEmpty(want), n)
	got = normalizeAll(dropTrailingEmpty(got), n)
	m := matcher{want: want, got: got, failWant: -1}
	if m.from(0, 0) {
		return nil
	}
	anyOrder := !slices.ContainsFunc(want, isEllipsis)
	if anyOrder && rowsMatchInAnyOrder(want, got) {
		return nil
	}
	return m.mismatch(anyOrder)
}

func normalizeAll(lines []string, n Normalizer) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = n.Normalize(l)
	}
	return out
}

func isEllipsis(line string) bool { return strings.TrimSpace(line) == ellipsis }

// lineMatches compares one normalized shown line with one real line.
func lineMatches(want, got string) bool {
	if prefix, ok := strings.CutSuffix(want, ellipsis); ok && !isEllipsis(want) {
		return strings.HasPrefix(got, prefix)
	}
	return want == got
}

// matcher compares in order, letting each "..." line take as few real lines
// as possible and backtracking when the rest does not match. It remembers
// the furthest point it reached, which is the difference worth showing.
type matcher struct {
	want, got         []string
	failWant, failGot int
}

func (m *matcher) from(i, j int) bool {
	switch {
	case i == len(m.want) && j == len(m.got):
		return true
	case i < len(m.want) && isEllipsis(m.want[i]):
		for k := j; k <= len(m.got); k++ {
			if m.from(i+1, k) {
				return true
			}
		}
		return false
	case i < len(m.want) && j < len(m.got) && lineMatches(m.want[i], m.got[j]):
		return m.from(i+1, j+1)
	}
	if i > m.failWant || i == m.failWant && j > m.failGot {
		m.failWant, m.failGot = i, j
	}
	return false
}

// rowsMatchInAnyOrder compares the lines after the header as a multiset:
// kubectl sorts rows by name, and names differ only in the random suffixes
// that normalizing erased.
func rowsMatchInAnyOrder(want, got []string) bool {
	if len(want) == 0 || len(want) != len(got) || !lineMatches(want[0], got[0]) {
		return false
	}
	used := make([]bool, len(got))
	used[0] = true // the header
	// Exact rows first, so that a "prefix..." row cannot take the real row
	// an exact one needs.
	for _, prefixRows := range []bool{false, true} {
		for _, w := range want[1:] {
			if strings.HasSuffix(w, ellipsis) != prefixRows {
				continue
			}
			k := firstUnused(w, got, used)
			if k < 0 {
				return false
			}
			used[k] = true
		}
	}
	return true
}

// firstUnused returns the index of the first real line not yet used that the
// shown line w matches, or -1.
func firstUnused(w string, got []string, used []bool) int {
	for k, g := range got {
		if !used[k] && lineMatches(w, g) {
			return k
		}
	}
	return -1
}

func (m *matcher) mismatch(anyOrder bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "output differs from the page at shown line %d, real line %d", m.failWant+1, m.failGot+1)
	if anyOrder {
		b.WriteString(" (rows after the header compared in any order too)")
	}
	b.WriteString(":\n")
	fmt.Fprintf(&b, "  shown: %s\n  real:  %s\n", lineOrEnd(m.want, m.failWant), lineOrEnd(m.got, m.failGot))
	writeSide(&b, "shown (normalized)", m.want, m.failWant)
	writeSide(&b, "real (normalized)", m.got, m.failGot)
	return fmt.Errorf("%s", strings.TrimRight(b.String(), "\n"))
}

func lineOrEnd(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of output>"
}

// writeSide lists lines under a title, marking line mark with ">".
func writeSide(b *strings.Builder, title string, lines []string, mark int) {
	fmt.Fprintf(b, "--- %s\n", title)
	for i, l := range lines {
		prefix := "  "
		if i == mark {
			prefix = "> "
		}
		fmt.Fprintf(b, "%s%3d %s\n", prefix, i+1, l)
	}
}
