package server

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// The reading core of container logs: it turns a file in the CRI log
// format ("<RFC3339Nano> stdout|stderr F|P <text>", P being a piece of a
// line that the next entry continues) into the text `kubectl logs` prints,
// as upstream's PodLogOptions ask. It reads from an io.Reader and knows
// nothing of files or HTTP, so tables test it.

// logOptions are the PodLogOptions the kubelet honours, read from the
// request's query.
type logOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines keeps only the last lines of the file; negative keeps all.
	TailLines int64
	// Since drops the lines written before it; zero keeps all.
	Since time.Time
	// LimitBytes stops the output after that many bytes; zero is no limit.
	LimitBytes int64
}

// logEntry is one line of a container's output, its pieces joined.
type logEntry struct {
	Time   time.Time
	Stream string
	Text   []byte
}

// criDecoder turns the lines of a CRI log file into entries, joining
// partial lines.
type criDecoder struct {
	partial *logEntry
}

// decode takes one line of the file (without its newline) and returns the
// entry it completes, if any. A malformed line is skipped, as a torn write
// must not end the log.
func (d *criDecoder) decode(line []byte) (logEntry, bool) {
	ts, stream, tag, text, ok := splitCRILine(line)
	if !ok {
		return logEntry{}, false
	}
	if d.partial == nil {
		d.partial = &logEntry{Time: ts, Stream: stream}
	}
	d.partial.Text = append(d.partial.Text, text...)
	if tag == "P" {
		return logEntry{}, false
	}
	e := *d.partial
	d.partial = nil
	return e, true
}

// splitCRILine splits "<time> <stream> <tag> <text>".
func splitCRILine(line []byte) (ts time.Time, stream, tag string, text []byte, ok bool) {
	fields := bytes.SplitN(line, []byte{' '}, 4)
	if len(fields) < 3 {
		return time.Time{}, "", "", nil, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return time.Time{}, "", "", nil, false
	}
	stream, tag = string(fields[1]), string(fields[2])
	if (stream != "stdout" && stream != "stderr") || (tag != "F" && tag != "P") {
		return time.Time{}, "", "", nil, false
	}
	if len(fields) == 4 {
		text = fields[3]
	}
	return ts, stream, tag, text, true
}

// errLimitReached ends a log once limitBytes are written.
var errLimitReached = errors.New("limitBytes reached")

// logWriter prints entries as `kubectl logs` shows them: the text, after
// the entry's time when timestamps are asked, cut at limitBytes.
type logWriter struct {
	w       io.Writer
	opts    logOptions
	written int64
}

// write prints e unless it is older than since; it returns
// errLimitReached once the output holds limitBytes.
func (lw *logWriter) write(e logEntry) error {
	if !lw.opts.Since.IsZero() && e.Time.Before(lw.opts.Since) {
		return nil
	}
	var line []byte
	if lw.opts.Timestamps {
		line = append(line, e.Time.UTC().Format(time.RFC3339Nano)...)
		line = append(line, ' ')
	}
	line = append(append(line, e.Text...), '\n')
	if lw.opts.LimitBytes > 0 {
		if left := lw.opts.LimitBytes - lw.written; int64(len(line)) >= left {
			n, err := lw.w.Write(line[:left])
			lw.written += int64(n)
			if err != nil {
				return err
			}
			return errLimitReached
		}
	}
	n, err := lw.w.Write(line)
	lw.written += int64(n)
	return err
}

// lineReader reads the complete lines of a file that is still written:
// at the end of what is there, a line without its newline yet is kept
// until the rest arrives.
type lineReader struct {
	r    io.Reader
	buf  []byte
	read [32 * 1024]byte
	eof  bool
}

// next returns the next complete line, or false at the end of what the
// reader holds now.
func (l *lineReader) next() ([]byte, bool, error) {
	for {
		if i := bytes.IndexByte(l.buf, '\n'); i >= 0 {
			line := l.buf[:i]
			l.buf = l.buf[i+1:]
			return line, true, nil
		}
		n, err := l.r.Read(l.read[:])
		l.buf = append(l.buf, l.read[:n]...)
		if errors.Is(err, io.EOF) || (n == 0 && err == nil) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

// logCopier copies a CRI log to a writer: first what the file holds (of
// which tailLines keeps the end), then, on each call to more, what was
// appended since.
type logCopier struct {
	lines lineReader
	dec   criDecoder
	out   logWriter
}

func newLogCopier(w io.Writer, r io.Reader, opts logOptions) *logCopier {
	return &logCopier{lines: lineReader{r: r}, out: logWriter{w: w, opts: opts}}
}

// catchUp prints what the log holds now, keeping only its last
// tailLines entries.
func (c *logCopier) catchUp() error {
	if c.out.opts.TailLines < 0 {
		return c.more()
	}
	var tail []logEntry
	for {
		line, ok, err := c.lines.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if e, ok := c.dec.decode(line); ok && c.keeps(e) {
			tail = append(tail, e)
			if int64(len(tail)) > c.out.opts.TailLines {
				tail = tail[1:]
			}
		}
	}
	for _, e := range tail {
		if err := c.out.write(e); err != nil {
			return err
		}
	}
	return nil
}

// keeps says whether e counts toward tailLines: lines before since are
// not printed, so they are not among the last ones either.
func (c *logCopier) keeps(e logEntry) bool {
	return c.out.opts.Since.IsZero() || !e.Time.Before(c.out.opts.Since)
}

// more prints every complete entry the reader holds now.
func (c *logCopier) more() error {
	for {
		line, ok, err := c.lines.next()
		if err != nil || !ok {
			return err
		}
		if e, ok := c.dec.decode(line); ok {
			if err := c.out.write(e); err != nil {
				return err
			}
		}
	}
}

// copyLogs prints the CRI log in r to w as opts ask, without following.
func copyLogs(w io.Writer, r io.Reader, opts logOptions) error {
	err := newLogCopier(w, r, opts).catchUp()
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}
