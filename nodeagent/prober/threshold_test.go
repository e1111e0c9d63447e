package prober

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// results spells a sequence of probe results: S success, W warning, F
// failure, ? unknown.
func results(s string) []Result {
	var rs []Result
	for _, c := range s {
		rs = append(rs, map[rune]Result{'S': Success, 'W': Warning, 'F': Failure, '?': Unknown}[c])
	}
	return rs
}

// spell spells verdicts the same way, with U for Unknown.
func spell(rs []Result) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(map[Result]string{Success: "S", Failure: "F", Unknown: "U"}[r])
	}
	return b.String()
}

func TestObserve(t *testing.T) {
	cases := []struct {
		name    string
		kind    Kind
		probe   corev1.Probe
		results string
		// verdicts after each result, and which results changed it.
		verdicts string
		changed  string
		onHold   bool
	}{
		{"liveness, failureThreshold 3: two failures are tolerated, the third fails", Liveness, corev1.Probe{FailureThreshold: 3},
			"SFFSFFF", "SSSSSSF", "......^", true},
		{"liveness, defaults: three failures in a row", Liveness, corev1.Probe{},
			"FFF", "SSF", "..^", true},
		{"liveness, failureThreshold 1: the first failure", Liveness, corev1.Probe{FailureThreshold: 1},
			"SF", "SF", ".^", true},
		{"liveness: successThreshold other than 1 is taken as 1", Liveness, corev1.Probe{SuccessThreshold: 5, FailureThreshold: 1},
			"S", "S", ".", false},
		{"liveness: unknown results neither count nor break a run", Liveness, corev1.Probe{FailureThreshold: 2},
			"F??F", "SSSF", "...^", true},
		{"readiness starts not ready; one success makes it ready", Readiness, corev1.Probe{},
			"S", "S", "^", false},
		{"readiness, successThreshold 2: ready after two successes in a row", Readiness, corev1.Probe{SuccessThreshold: 2, FailureThreshold: 1},
			"SFSSSF", "FFFSSF", "...^.^", false},
		{"readiness, failureThreshold 3: unready after three failures, ready again", Readiness, corev1.Probe{FailureThreshold: 3},
			"SFFFFS", "SSSFFS", "^..^.^", false},
		{"readiness: a warning (redirect elsewhere) is a success", Readiness, corev1.Probe{},
			"W", "S", "^", false},
		{"readiness never goes on hold", Readiness, corev1.Probe{FailureThreshold: 1},
			"SF", "SF", "^^", false},
		{"startup: unknown until it succeeds", Startup, corev1.Probe{FailureThreshold: 3},
			"FFS", "UUS", "..^", false},
		{"startup: fails after failureThreshold and goes on hold", Startup, corev1.Probe{FailureThreshold: 2},
			"FF", "UF", ".^", true},
		{"startup: unknown results do not decide", Startup, corev1.Probe{},
			"???", "UUU", "...", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := thresholdsOf(tc.kind, &tc.probe)
			s := initialState(tc.kind)
			var got []Result
			var changed strings.Builder
			for _, r := range results(tc.results) {
				var c bool
				s, c = observe(tc.kind, th, s, r)
				got = append(got, s.verdict)
				changed.WriteString(map[bool]string{true: "^", false: "."}[c])
			}
			if v := spell(got); v != tc.verdicts || changed.String() != tc.changed {
				t.Errorf("results %s: verdicts %s changed %s, want %s %s", tc.results, v, changed.String(), tc.verdicts, tc.changed)
			}
			if s.onHold != tc.onHold {
				t.Errorf("onHold = %v, want %v", s.onHold, tc.onHold)
			}
		})
	}
}

func TestDue(t *testing.T) {
	cases := []struct {
		name    string
		kind    Kind
		state   state
		started bool
		want    bool
	}{
		{"startup runs until the container has started", Startup, initialState(Startup), false, true},
		{"startup stops once started", Startup, state{verdict: Success}, true, false},
		{"liveness waits for startup", Liveness, initialState(Liveness), false, false},
		{"liveness runs once started", Liveness, initialState(Liveness), true, true},
		{"readiness waits for startup", Readiness, initialState(Readiness), false, false},
		{"readiness runs once started", Readiness, initialState(Readiness), true, true},
		{"a failed liveness probe holds until the container restarts", Liveness, state{verdict: Failure, onHold: true}, true, false},
		{"a failed startup probe holds", Startup, state{verdict: Failure, onHold: true}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := due(tc.kind, tc.state, tc.started); got != tc.want {
				t.Errorf("due = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestThresholdsDefaults(t *testing.T) {
	cases := []struct {
		name  string
		kind  Kind
		probe corev1.Probe
		want  thresholds
	}{
		{"unset fields take the API's defaults", Readiness, corev1.Probe{},
			thresholds{period: 10 * time.Second, success: 1, failure: 3}},
		{"set fields are kept", Readiness, corev1.Probe{InitialDelaySeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 7},
			thresholds{initialDelay: 5 * time.Second, period: 2 * time.Second, success: 2, failure: 7}},
		{"liveness and startup need one success", Startup, corev1.Probe{SuccessThreshold: 4},
			thresholds{period: 10 * time.Second, success: 1, failure: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := thresholdsOf(tc.kind, &tc.probe); got != tc.want {
				t.Errorf("thresholds = %+v, want %+v", got, tc.want)
			}
		})
	}
}
