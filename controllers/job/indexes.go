package job

import (
	"slices"
	"strconv"
	"strings"
)

// indexSet is a set of completion indexes, as status.completedIndexes
// holds them.
type indexSet map[int]bool

// parseIndexes reads upstream's interval format ("1,3-5,7"). Entries that
// do not parse, or fall outside [0, completions), are ignored: the status
// is ours to rewrite.
func parseIndexes(s string, completions int) indexSet {
	set := indexSet{}
	if s == "" {
		return set
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := max(first, 0); i <= last && i < completions; i++ {
			set[i] = true
		}
	}
	return set
}

// String writes the set in upstream's interval format, ascending, with
// every run of consecutive indexes as "a-b".
func (s indexSet) String() string {
	sorted := make([]int, 0, len(s))
	for i := range s {
		sorted = append(sorted, i)
	}
	slices.Sort(sorted)
	var b strings.Builder
	for k := 0; k < len(sorted); {
		end := k
		for end+1 < len(sorted) && sorted[end+1] == sorted[end]+1 {
			end++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(sorted[k]))
		if end > k {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(sorted[end]))
		}
		k = end + 1
	}
	return b.String()
}
