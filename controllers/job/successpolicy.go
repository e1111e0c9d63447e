package job

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
)

// reasonSuccessPolicy is the SuccessCriteriaMet reason when a
// successPolicy rule matched.
const reasonSuccessPolicy = "SuccessPolicy"

// matchSuccessPolicy returns the message for the first successPolicy rule
// the completed indexes satisfy, and false when none is (or there is no
// policy). A rule with succeededIndexes needs all of them, or
// succeededCount of them when both are set; one with succeededCount alone
// needs that many indexes of any kind.
func matchSuccessPolicy(policy *batchv1.SuccessPolicy, completed indexSet, completions int) (string, bool) {
	if policy == nil {
		return "", false
	}
	for i, rule := range policy.Rules {
		done, want := len(completed), 0
		if rule.SucceededIndexes != nil {
			wanted := parseIndexes(*rule.SucceededIndexes, completions)
			done, want = 0, len(wanted)
			for idx := range wanted {
				if completed[idx] {
					done++
				}
			}
		}
		if rule.SucceededCount != nil {
			want = int(*rule.SucceededCount)
		}
		if want > 0 && done >= want {
			return fmt.Sprintf("Matched rules at index %d", i), true
		}
	}
	return "", false
}
