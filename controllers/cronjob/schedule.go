package cronjob

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxMissedStarts is how many missed start times upstream tolerates before
// it warns that the clock may be skewed or the controller was down too
// long. It still starts the most recent one.
const maxMissedStarts = 100

// nextScheduleDelta is added to a requeue so that the reconcile lands just
// after the scheduled time, never a tick before it (upstream's 100ms).
const nextScheduleDelta = 100 * time.Millisecond

// schedule is a parsed spec.schedule in the CronJob's time zone.
type schedule struct {
	cron cron.Schedule
	loc  *time.Location
}

// parseSchedule parses spec.schedule with robfig/cron's standard parser and
// loads spec.timeZone (the controller's local zone when unset, as
// upstream). The API refuses a TZ= or CRON_TZ= prefix, so the zone can only
// come from spec.timeZone. A failure comes with the reason of upstream's
// Warning Event: UnknownTimeZone or UnparseableSchedule.
func parseSchedule(spec batchv1.CronJobSpec) (schedule, string, error) {
	loc := time.Local
	if spec.TimeZone != nil {
		l, err := time.LoadLocation(*spec.TimeZone)
		if err != nil {
			return schedule{}, "UnknownTimeZone", fmt.Errorf("invalid timeZone: %q: %w", *spec.TimeZone, err)
		}
		loc = l
	}
	s, err := cron.ParseStandard(spec.Schedule)
	if err != nil {
		return schedule{}, "UnparseableSchedule", fmt.Errorf("unparseable schedule: %q: %w", spec.Schedule, err)
	}
	return schedule{cron: s, loc: loc}, "", nil
}

// Next returns the first scheduled time strictly after t.
func (s schedule) Next(t time.Time) time.Time {
	// robfig/cron computes in the location of the time it is given.
	return s.cron.Next(t.In(s.loc))
}

// missed is what the schedule says about the starts due by now.
type missed struct {
	// MostRecent is the latest scheduled time not after now that is still
	// due, or nil when none is.
	MostRecent *time.Time
	// TooMany is true when more than maxMissedStarts times were missed.
	TooMany bool
}

// earliestTime is the time after which a start may still be due: the last
// schedule (or the CronJob's creation), moved up to now minus
// startingDeadlineSeconds when withDeadline, since older starts are too late
// anyway.
func earliestTime(meta metav1.ObjectMeta, spec batchv1.CronJobSpec, status batchv1.CronJobStatus, now time.Time, withDeadline bool) time.Time {
	earliest := meta.CreationTimestamp.Time
	if status.LastScheduleTime != nil {
		earliest = status.LastScheduleTime.Time
	}
	if withDeadline && spec.StartingDeadlineSeconds != nil {
		deadline := now.Add(-time.Duration(*spec.StartingDeadlineSeconds) * time.Second)
		if deadline.After(earliest) {
			earliest = deadline
		}
	}
	return earliest
}

// missedStarts finds the scheduled times after earliest and not after now.
// It counts at most maxMissedStarts+1 of them, so a CronJob stopped for
// years costs no more than one stopped for a few hours.
func missedStarts(s schedule, earliest, now time.Time) missed {
	t := s.Next(earliest)
	if t.IsZero() || t.After(now) {
		return missed{}
	}
	count, last := 1, t
	for count <= maxMissedStarts {
		next := s.Next(last)
		if next.IsZero() || next.After(now) {
			return missed{MostRecent: &last}
		}
		count, last = count+1, next
	}
	mostRecent := lastBefore(s, last, now)
	return missed{MostRecent: &mostRecent, TooMany: true}
}

// lastBefore returns the latest scheduled time not after now, knowing that
// known is one. It looks back from now over a window that doubles until it
// holds a scheduled time, then walks forward through that window only.
func lastBefore(s schedule, known, now time.Time) time.Time {
	start := known
	for window := time.Minute; ; window *= 2 {
		from := now.Add(-window)
		if !from.After(known) {
			break
		}
		if t := s.Next(from); !t.IsZero() && !t.After(now) {
			start = t
			break
		}
	}
	for {
		next := s.Next(start)
		if next.IsZero() || next.After(now) {
			return start
		}
		start = next
	}
}

// requeueAfter is how long to wait before the next scheduled time after
// now, or 0 when the schedule has no future time.
func requeueAfter(s schedule, now time.Time) time.Duration {
	next := s.Next(now)
	if next.IsZero() {
		return 0
	}
	return next.Sub(now) + nextScheduleDelta
}

// tooLate reports whether scheduled is past spec.startingDeadlineSeconds
// at now.
func tooLate(spec batchv1.CronJobSpec, scheduled, now time.Time) bool {
	if spec.StartingDeadlineSeconds == nil {
		return false
	}
	return scheduled.Add(time.Duration(*spec.StartingDeadlineSeconds) * time.Second).Before(now)
}

// jobName is the deterministic name of the Job for one scheduled time: the
// CronJob's name and the time in minutes since the epoch, as upstream, so
// that a restarted controller finds the Job it already created.
func jobName(cronJobName string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cronJobName, scheduled.Unix()/60)
}

// scheduledTimestamp is the value of a Job's scheduled-timestamp
// annotation: the scheduled time in RFC 3339, in spec.timeZone, or in UTC
// when it is unset, as upstream (which schedules in its local zone but
// writes the annotation in the zone named "", UTC).
func scheduledTimestamp(spec batchv1.CronJobSpec, scheduled time.Time) string {
	loc := time.UTC
	if spec.TimeZone != nil {
		// parseSchedule has already loaded it.
		if l, err := time.LoadLocation(*spec.TimeZone); err == nil {
			loc = l
		}
	}
	return scheduled.In(loc).Format(time.RFC3339)
}
