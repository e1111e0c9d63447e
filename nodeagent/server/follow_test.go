package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// openLog creates a log file and opens it for the log driver (w) and for
// a follower (r); both are closed when the test ends.
func openLog(t *testing.T) (w, r *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if r, err = os.Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return w, r
}

// appendLine writes one CRI log line as the log driver does; a line
// written in two halves shows that a follower never prints half a line.
func appendLine(t *testing.T, f *os.File, text string) {
	t.Helper()
	line := fmt.Sprintf("%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text)
	half := len(line) / 2
	for _, part := range []string{line[:half], line[half:]} {
		if _, err := f.WriteString(part); err != nil {
			t.Error(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// startFollow follows the log in r in the background, as a client with
// ctx would, and returns what it prints, line by line, and its end.
func startFollow(ctx context.Context, r io.Reader, running func(context.Context) bool) (*bufio.Scanner, <-chan error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := follow(ctx, newLogCopier(pw, r, logOptions{TailLines: -1}), func() {}, running)
		pw.Close()
		done <- err
	}()
	return bufio.NewScanner(pr), done
}

// expectLines reads want from the follower's output, failing the test
// after a timeout.
func expectLines(t *testing.T, out *bufio.Scanner, want ...string) {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		for len(lines) < len(want) && out.Scan() {
			lines = append(lines, out.Text())
		}
		got <- lines
	}()
	select {
	case lines := <-got:
		if fmt.Sprint(lines) != fmt.Sprint(want) {
			t.Errorf("followed %q, want %q", lines, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the follower did not print %q within 10s", want)
	}
}

// expectEnd waits for the follow to end.
func expectEnd(t *testing.T, done <-chan error, why string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("follow did not end when %s", why)
	}
}

func TestFollowSeesAppendedLinesUntilTheClientLeaves(t *testing.T) {
	w, r := openLog(t)
	appendLine(t, w, "before")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := startFollow(ctx, r, func(context.Context) bool { return true })
	go func() {
		for i := range 3 {
			appendLine(t, w, fmt.Sprintf("line %d", i))
		}
	}()
	expectLines(t, out, "before", "line 0", "line 1", "line 2")
	cancel()
	expectEnd(t, done, "its context ended")
}

func TestFollowEndsWithTheRun(t *testing.T) {
	w, r := openLog(t)
	var running atomic.Bool
	running.Store(true)
	out, done := startFollow(context.Background(), r, func(context.Context) bool { return running.Load() })
	appendLine(t, w, "last words")
	running.Store(false)
	expectLines(t, out, "last words")
	expectEnd(t, done, "the run ended")
}
