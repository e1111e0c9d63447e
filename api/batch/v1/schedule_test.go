package v1_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/robfig/cron/v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// scheduleRegexp extracts the regular expression of the CronJob schedule
// rule from the generated CRD, the text the apiserver actually runs.
func scheduleRegexp(t *testing.T) *regexp.Regexp {
	t.Helper()
	return ruleRegexp(t, "self.schedule.matches('")
}

// ruleRegexp extracts the regular expression of the CronJob spec rule that
// starts with prefix and ends with the closing of matches('...').
func ruleRegexp(t *testing.T, prefix string) *regexp.Regexp {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "crd", "bases", "batch.skiff.dev_cronjobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	for _, r := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].XValidations {
		if rest, ok := strings.CutPrefix(r.Rule, prefix); ok {
			return regexp.MustCompile(strings.TrimSuffix(rest, "')"))
		}
	}
	t.Fatalf("no rule %s...') in the CronJob CRD", prefix)
	return nil
}

// stricterThanParser are schedules that robfig/cron takes but that are
// almost surely typos, so the CRD rule refuses them on purpose.
var stricterThanParser = map[string]bool{"1,,2 * * * *": true, ",1 * * * *": true}

// looserThanParser are schedules that no regular expression can judge: a
// range whose start is after its end. The rule lets them through and the
// CronJob controller reports the parser's error on the object.
var looserThanParser = map[string]bool{"30-10 * * * *": true, "* * * * 5-1": true}

// TestScheduleRuleAgreesWithRobfigCron checks that the apiserver's schedule
// rule accepts what the CronJob controller's parser (robfig/cron's standard
// parser) accepts, and refuses what it refuses.
func TestScheduleRuleAgreesWithRobfigCron(t *testing.T) {
	rx := scheduleRegexp(t)
	cases := []string{
		"* * * * *", "*/5 * * * *", "0 0 * * *", "59 23 31 12 6", "0 0 1 1 0",
		"0,15,30,45 * * * *", "0-30/10 9-17 * * 1-5", "5/15 * * * *", "0 12 * JAN-MAR mon,WED,fri",
		"0 0 ? * *", "00 01 01 01 00", "  0 0 * * *  ", "0  0  *  *  *",
		"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
		"@every 1h30m", "@every 90s", "@every 1.5h",
		"60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *", "* * * 0 *", "* * * * 7",
		"* * * *", "* * * * * *", "", "hello", "@reboot", "@every", "@every 1x",
		"*/0 * * * *", "1-2-3 * * * *", "a * * * *", "* * * foo *", "TZ=UTC * * * *", "CRON_TZ=UTC * * * *",
		"1,,2 * * * *", ",1 * * * *", "-1 * * * *", "30-10 * * * *", "* * * * 5-1",
	}
	for _, schedule := range cases {
		_, parseErr := cron.ParseStandard(schedule)
		parses, matches := parseErr == nil, rx.MatchString(schedule)
		if strings.HasPrefix(schedule, "TZ=") || strings.HasPrefix(schedule, "CRON_TZ=") {
			// Upstream refuses a time zone in the schedule and asks for
			// spec.timeZone instead, though the parser would take it.
			parses = false
		}
		if stricterThanParser[schedule] {
			// robfig/cron skips empty list items; skiff refuses them as typos.
			parses = false
		}
		if looserThanParser[schedule] {
			parses = true
		}
		if parses != matches {
			t.Errorf("schedule %q: robfig/cron parses it: %v, the CRD rule accepts it: %v", schedule, parses, matches)
		}
	}
}
