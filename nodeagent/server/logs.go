package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// parseLogOptions reads PodLogOptions from a /containerLogs query, with
// upstream's validation: sinceSeconds is counted back from now.
func parseLogOptions(q url.Values, now time.Time) (logOptions, error) {
	opts := logOptions{TailLines: -1}
	var err error
	for name, dst := range map[string]*bool{"follow": &opts.Follow, "previous": &opts.Previous, "timestamps": &opts.Timestamps} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return logOptions{}, fmt.Errorf("%s: must be true or false, got %q", name, v)
			}
		}
	}
	if opts.TailLines, err = intParam(q, "tailLines", 0, -1); err != nil {
		return logOptions{}, err
	}
	if opts.LimitBytes, err = intParam(q, "limitBytes", 1, 0); err != nil {
		return logOptions{}, err
	}
	seconds, err := intParam(q, "sinceSeconds", 1, 0)
	if err != nil {
		return logOptions{}, err
	}
	sinceTime := q.Get("sinceTime")
	switch {
	case seconds > 0 && sinceTime != "":
		return logOptions{}, errors.New("sinceSeconds and sinceTime: at most one may be set")
	case seconds > 0:
		opts.Since = now.Add(-time.Duration(seconds) * time.Second)
	case sinceTime != "":
		if opts.Since, err = time.Parse(time.RFC3339, sinceTime); err != nil {
			return logOptions{}, fmt.Errorf("sinceTime: must be an RFC 3339 time such as 2006-01-02T15:04:05Z, got %q", sinceTime)
		}
	}
	return opts, nil
}

// intParam reads an integer query parameter of at least min, or unset.
func intParam(q url.Values, name string, min, unset int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return unset, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s: must be an integer >= %d, got %q", name, min, v)
	}
	return n, nil
}

// followPoll is how often a follow looks for new lines, and runningCheck
// how often, while none come, whether the container's run has ended.
const (
	followPoll   = 100 * time.Millisecond
	runningCheck = time.Second
)

// serveLogs answers GET /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request, pod *skiffcorev1.Pod, container string) {
	ctx := r.Context()
	opts, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, httpError{http.StatusBadRequest, err.Error()})
		return
	}
	path, running, err := s.cfg.Runtime.ContainerLogs(ctx, pod, container, opts.Previous)
	if err != nil {
		writeError(w, httpError{http.StatusBadRequest, err.Error()})
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		// A run that never started has written nothing.
		w.Header().Set("Content-Type", "text/plain")
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "text/plain")
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	c := newLogCopier(w, f, opts)
	// Past the header there is no status left to answer with: a failed
	// write means the client left, and the log ends.
	err = c.catchUp()
	flush()
	if err == nil && opts.Follow && running {
		stillRunning := func(ctx context.Context) bool {
			p, running, err := s.cfg.Runtime.ContainerLogs(ctx, pod, container, false)
			return err == nil && running && p == path
		}
		_ = follow(ctx, c, flush, stillRunning)
	}
}

// follow prints what is appended to the log until ctx ends (the client
// left) or its run ends, which stillRunning tells; after the end it
// prints what was written last.
func follow(ctx context.Context, c *logCopier, flush func(), stillRunning func(context.Context) bool) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	lastCheck := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		before := c.out.written
		if err := c.more(); err != nil {
			flush()
			return ignoreLimit(err)
		}
		if c.out.written != before {
			flush()
			continue
		}
		if time.Since(lastCheck) < runningCheck {
			continue
		}
		lastCheck = time.Now()
		if !stillRunning(ctx) {
			// The log driver may still be copying the run's last output.
			time.Sleep(followPoll)
			err := c.more()
			flush()
			return ignoreLimit(err)
		}
	}
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}
