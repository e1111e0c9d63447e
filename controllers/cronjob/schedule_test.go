package cronjob

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMissedStarts(t *testing.T) {
	cases := []struct {
		name       string
		schedule   string
		timeZone   *string
		created    string
		lastSched  string // empty: never scheduled
		deadline   *int64
		now        string
		mostRecent string // empty: nothing due
		tooMany    bool
	}{
		{name: "nothing due before the first time", schedule: "*/5 * * * *",
			created: "2026-01-01T10:01:00Z", now: "2026-01-01T10:04:59Z"},
		{name: "exactly at the scheduled time", schedule: "*/5 * * * *",
			created: "2026-01-01T10:01:00Z", now: "2026-01-01T10:05:00Z", mostRecent: "2026-01-01T10:05:00Z"},
		{name: "creation time itself is not due", schedule: "*/5 * * * *",
			created: "2026-01-01T10:05:00Z", now: "2026-01-01T10:09:00Z"},
		{name: "last schedule time replaces creation", schedule: "*/5 * * * *",
			created: "2026-01-01T00:00:00Z", lastSched: "2026-01-01T10:05:00Z", now: "2026-01-01T10:09:00Z"},
		{name: "several missed: the most recent one", schedule: "*/5 * * * *",
			created: "2026-01-01T10:01:00Z", now: "2026-01-01T10:23:00Z", mostRecent: "2026-01-01T10:20:00Z"},
		{name: "exactly 100 missed is not too many", schedule: "* * * * *",
			created: "2026-01-01T10:00:30Z", now: "2026-01-01T11:40:00Z", mostRecent: "2026-01-01T11:40:00Z"},
		{name: "101 missed is too many, still the most recent", schedule: "* * * * *",
			created: "2026-01-01T10:00:30Z", now: "2026-01-01T11:41:10Z", mostRecent: "2026-01-01T11:41:00Z", tooMany: true},
		{name: "years missed are counted cheaply", schedule: "0 3 * * *",
			created: "2020-01-01T00:00:00Z", now: "2026-06-15T12:00:00Z", mostRecent: "2026-06-15T03:00:00Z", tooMany: true},
		{name: "a deadline limits how far back starts are due", schedule: "* * * * *", deadline: ptr.To[int64](200),
			created: "2026-01-01T00:00:00Z", now: "2026-01-01T11:41:10Z", mostRecent: "2026-01-01T11:41:00Z"},
		{name: "a deadline with nothing inside it", schedule: "0 * * * *", deadline: ptr.To[int64](60),
			created: "2026-01-01T00:00:30Z", now: "2026-01-01T10:30:00Z"},
		{name: "time zone: 09:00 in New York is 14:00 UTC in winter", schedule: "0 9 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-01-10T00:00:00Z", now: "2026-01-10T14:30:00Z", mostRecent: "2026-01-10T14:00:00Z"},
		{name: "time zone: not yet 09:00 in New York", schedule: "0 9 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-01-10T00:00:00Z", now: "2026-01-10T13:59:00Z"},
		{name: "time zone: 09:00 in New York is 13:00 UTC in summer", schedule: "0 9 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-07-10T00:00:00Z", now: "2026-07-10T13:30:00Z", mostRecent: "2026-07-10T13:00:00Z"},
		// 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that
		// day and robfig/cron (so upstream too) skips it; the next run is
		// 02:30 EDT the day after, 06:30 UTC.
		{name: "DST spring forward: a skipped local time is skipped", schedule: "30 2 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-03-08T05:00:00Z", now: "2026-03-08T12:00:00Z"},
		{name: "DST spring forward: the day after runs", schedule: "30 2 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-03-08T05:00:00Z", now: "2026-03-09T07:00:00Z", mostRecent: "2026-03-09T06:30:00Z"},
		// 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice,
		// and robfig/cron (so upstream too) runs at both, 05:30 and 06:30 UTC.
		{name: "DST fall back: a repeated local time runs again", schedule: "30 1 * * *", timeZone: ptr.To("America/New_York"),
			created: "2026-11-01T04:00:00Z", lastSched: "2026-11-01T05:30:00Z", now: "2026-11-01T07:00:00Z", mostRecent: "2026-11-01T06:30:00Z"},
		{name: "@every", schedule: "@every 90s",
			created: "2026-01-01T10:00:00Z", now: "2026-01-01T10:04:00Z", mostRecent: "2026-01-01T10:03:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := batchv1.CronJobSpec{Schedule: tc.schedule, TimeZone: tc.timeZone, StartingDeadlineSeconds: tc.deadline}
			meta := metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(mustTime(t, tc.created))}
			var status batchv1.CronJobStatus
			if tc.lastSched != "" {
				status.LastScheduleTime = ptr.To(metav1.NewTime(mustTime(t, tc.lastSched)))
			}
			s, _, err := parseSchedule(spec)
			if err != nil {
				t.Fatal(err)
			}
			now := mustTime(t, tc.now)
			got := missedStarts(s, earliestTime(meta, spec, status, now, true), now)
			if got.TooMany != tc.tooMany {
				t.Errorf("too many = %v, want %v", got.TooMany, tc.tooMany)
			}
			switch {
			case tc.mostRecent == "" && got.MostRecent != nil:
				t.Errorf("most recent = %s, want none", got.MostRecent.UTC())
			case tc.mostRecent != "" && got.MostRecent == nil:
				t.Errorf("most recent = none, want %s", tc.mostRecent)
			case tc.mostRecent != "" && !got.MostRecent.Equal(mustTime(t, tc.mostRecent)):
				t.Errorf("most recent = %s, want %s", got.MostRecent.UTC(), tc.mostRecent)
			}
		})
	}
}

func TestTooLate(t *testing.T) {
	scheduled := mustTime(t, "2026-01-01T10:00:00Z")
	cases := []struct {
		name     string
		deadline *int64
		now      string
		want     bool
	}{
		{name: "no deadline is never late", now: "2030-01-01T00:00:00Z"},
		{name: "inside the deadline", deadline: ptr.To[int64](60), now: "2026-01-01T10:00:59Z"},
		{name: "at the deadline", deadline: ptr.To[int64](60), now: "2026-01-01T10:01:00Z"},
		{name: "past the deadline", deadline: ptr.To[int64](60), now: "2026-01-01T10:01:01Z", want: true},
		{name: "zero deadline, a second late", deadline: ptr.To[int64](0), now: "2026-01-01T10:00:01Z", want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := batchv1.CronJobSpec{StartingDeadlineSeconds: tc.deadline}
			if got := tooLate(spec, scheduled, mustTime(t, tc.now)); got != tc.want {
				t.Errorf("tooLate = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRequeueAfterLandsJustAfterTheNextTime(t *testing.T) {
	cases := []struct {
		schedule, timeZone, now string
		want                    time.Duration
	}{
		{"*/5 * * * *", "UTC", "2026-01-01T10:01:00Z", 4*time.Minute + nextScheduleDelta},
		{"*/5 * * * *", "UTC", "2026-01-01T10:05:00Z", 5*time.Minute + nextScheduleDelta},
		{"0 9 * * *", "Asia/Tokyo", "2026-01-01T23:30:00Z", 30*time.Minute + nextScheduleDelta},
		// February never has a 30th: no next time, and no requeue.
		{"0 0 30 2 *", "UTC", "2026-01-01T10:01:00Z", 0},
	}
	for _, tc := range cases {
		s, _, err := parseSchedule(batchv1.CronJobSpec{Schedule: tc.schedule, TimeZone: &tc.timeZone})
		if err != nil {
			t.Fatal(err)
		}
		if got := requeueAfter(s, mustTime(t, tc.now)); got != tc.want {
			t.Errorf("%s in %s at %s: requeue after %s, want %s", tc.schedule, tc.timeZone, tc.now, got, tc.want)
		}
	}
}

func TestParseScheduleRefuses(t *testing.T) {
	cases := []struct {
		spec   batchv1.CronJobSpec
		reason string
	}{
		{batchv1.CronJobSpec{Schedule: "30-10 * * * *"}, "UnparseableSchedule"},
		{batchv1.CronJobSpec{Schedule: "not a schedule"}, "UnparseableSchedule"},
		{batchv1.CronJobSpec{Schedule: "* * * * *", TimeZone: ptr.To("Mars/Olympus_Mons")}, "UnknownTimeZone"},
	}
	for _, tc := range cases {
		_, reason, err := parseSchedule(tc.spec)
		if err == nil || reason != tc.reason {
			t.Errorf("schedule %q zone %v: reason %q, error %v; want reason %q", tc.spec.Schedule, tc.spec.TimeZone, reason, err, tc.reason)
		}
	}
}

func TestJobNameIsMinutesSinceEpoch(t *testing.T) {
	// 2026-01-01T00:00:00Z is 1767225600 seconds since the epoch.
	if got, want := jobName("tick", mustTime(t, "2026-01-01T00:00:00Z")), "tick-29453760"; got != want {
		t.Errorf("jobName = %q, want %q", got, want)
	}
	// Same minute in another zone: same name.
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	if a, b := jobName("x", mustTime(t, "2026-01-01T00:00:00Z")), jobName("x", mustTime(t, "2026-01-01T00:00:00Z").In(tokyo)); a != b {
		t.Errorf("names differ by zone: %q, %q", a, b)
	}
}

func TestScheduledTimestamp(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := mustTime(t, "2026-01-01T00:30:00Z").In(tokyo)
	cases := []struct {
		timeZone *string
		want     string
	}{
		{nil, "2026-01-01T00:30:00Z"},
		{ptr.To("Asia/Tokyo"), "2026-01-01T09:30:00+09:00"},
		{ptr.To("America/New_York"), "2025-12-31T19:30:00-05:00"},
	}
	for _, tc := range cases {
		if got := scheduledTimestamp(batchv1.CronJobSpec{TimeZone: tc.timeZone}, at); got != tc.want {
			t.Errorf("zone %v: %q, want %q", tc.timeZone, got, tc.want)
		}
	}
}
