package containerd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logDriverArg is the argument with which a shim runs the agent's own
// binary as a container's log driver. containerd's binary logging passes
// the URI's query as arguments: "skiff-log-file <path>".
const logDriverArg = "skiff-log-file"

// maxLogLine is where a long line is split into partial lines, as the
// kubelet's CRI log format does.
const maxLogLine = 16 * 1024

// RunLogDriverIfAsked turns the process into a container's log driver when
// a containerd shim started it as one, and never returns then. Every
// program that runs the containerd runtime calls it first thing in main
// (and tests in TestMain), because the shim runs os.Executable().
//
// A shim-run log driver outlives the agent: the agent can restart while
// containers run and no line of their output is lost.
func RunLogDriverIfAsked() {
	if len(os.Args) != 3 || os.Args[1] != logDriverArg {
		return
	}
	os.Exit(runLogDriver(os.Args[2]))
}

// runLogDriver copies the container's stdout (fd 3) and stderr (fd 4) into
// path in the CRI log format ("<RFC3339Nano> stdout F <line>"), after
// telling the shim it is ready by closing fd 5.
func runLogDriver(path string) int {
	stdout, stderr, ready := os.NewFile(3, "stdout"), os.NewFile(4, "stderr"), os.NewFile(5, "ready")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skiff log driver:", err)
		return 1
	}
	defer f.Close()
	if ready != nil {
		ready.Close()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for stream, r := range map[string]io.Reader{"stdout": stdout, "stderr": stderr} {
		if r == (*os.File)(nil) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			copyLines(f, &mu, stream, r, func() time.Time { return time.Now() })
		}()
	}
	wg.Wait()
	return 0
}

// copyLines writes each line of r as a CRI log line of stream. Lines
// longer than maxLogLine are written as partial lines ("P") followed by a
// full one ("F"), as the kubelet does.
func copyLines(w io.Writer, mu *sync.Mutex, stream string, r io.Reader, now func() time.Time) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			tag := "F"
			if isPrefix {
				tag = "P"
			}
			mu.Lock()
			fmt.Fprintf(w, "%s %s %s %s\n", now().UTC().Format(time.RFC3339Nano), stream, tag, line)
			mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}
