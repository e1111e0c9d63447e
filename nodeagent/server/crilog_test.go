package server

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"
)

// criLog is a log file as the shim-run log driver writes it: three lines
// a second apart from 10:00:00, the second one written in two pieces.
const criLog = `2026-11-25T10:00:00.000000001Z stdout F one
2026-11-25T10:00:01.5Z stderr P tw
2026-11-25T10:00:01.6Z stderr F o
not a CRI line
2026-11-25T10:00:02Z stdout F three
2026-11-25T10:00:03Z stdout F
`

func TestCopyLogs(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, tc := range []struct {
		name string
		opts logOptions
		want string
	}{
		{"everything, partial lines joined, malformed skipped", logOptions{TailLines: -1}, "one\ntwo\nthree\n\n"},
		{"timestamps of the first piece", logOptions{TailLines: -1, Timestamps: true},
			"2026-11-25T10:00:00.000000001Z one\n2026-11-25T10:00:01.5Z two\n2026-11-25T10:00:02Z three\n2026-11-25T10:00:03Z \n"},
		{"tailLines 2", logOptions{TailLines: 2}, "three\n\n"},
		{"tailLines 0", logOptions{TailLines: 0}, ""},
		{"tailLines beyond the file", logOptions{TailLines: 10}, "one\ntwo\nthree\n\n"},
		{"sinceTime drops older lines", logOptions{TailLines: -1, Since: at("2026-11-25T10:00:01Z")}, "two\nthree\n\n"},
		{"since and tail: the last lines after since", logOptions{TailLines: 3, Since: at("2026-11-25T10:00:02Z")}, "three\n\n"},
		{"limitBytes cuts mid-line", logOptions{TailLines: -1, LimitBytes: 6}, "one\ntw"},
		{"limitBytes at a line's end", logOptions{TailLines: -1, LimitBytes: 4}, "one\n"},
		{"limitBytes counts timestamps", logOptions{TailLines: -1, LimitBytes: 10, Timestamps: true}, "2026-11-25"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := copyLogs(&out, strings.NewReader(criLog), tc.opts); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}

// A line the driver has not finished writing is not printed half.
func TestCopyLogsHoldsAnUnfinishedLine(t *testing.T) {
	var out bytes.Buffer
	c := newLogCopier(&out, strings.NewReader("2026-11-25T10:00:00Z stdout F done\n2026-11-25T10:00:01Z stdout F half"), logOptions{TailLines: -1})
	if err := c.catchUp(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "done\n" {
		t.Errorf("got %q, want only the finished line", out.String())
	}
}

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query   string
		want    logOptions
		wantErr string
	}{
		{"", logOptions{TailLines: -1}, ""},
		{"follow=true&previous=1&timestamps=true", logOptions{Follow: true, Previous: true, Timestamps: true, TailLines: -1}, ""},
		{"tailLines=5&limitBytes=100", logOptions{TailLines: 5, LimitBytes: 100}, ""},
		{"sinceSeconds=60", logOptions{TailLines: -1, Since: now.Add(-time.Minute)}, ""},
		{"sinceTime=2026-11-25T11:00:00Z", logOptions{TailLines: -1, Since: now.Add(-time.Hour)}, ""},
		{"tailLines=-1", logOptions{}, "tailLines: must be an integer >= 0"},
		{"limitBytes=0", logOptions{}, "limitBytes: must be an integer >= 1"},
		{"sinceSeconds=0", logOptions{}, "sinceSeconds: must be an integer >= 1"},
		{"sinceSeconds=5&sinceTime=2026-11-25T11:00:00Z", logOptions{}, "at most one may be set"},
		{"sinceTime=yesterday", logOptions{}, "sinceTime: must be an RFC 3339 time"},
		{"follow=yes", logOptions{}, "follow: must be true or false"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseLogOptions(q, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
