package podio_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"skiff.dev/skiff/internal/kubectlskiff"
	"skiff.dev/skiff/internal/testenv"
)

// openPTY opens a pseudo-terminal of rows x cols: the plugin gets the
// terminal (slave) as its stdin and stdout, the test types into and reads
// from the other end (master). Both are closed when the test ends.
func openPTY(t *testing.T, rows, cols uint16) (master, terminal *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	terminal, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { terminal.Close() })
	resize(t, terminal, rows, cols)
	return master, terminal
}

func resize(t *testing.T, terminal *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(terminal.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

// screen is what the far end of a terminal shows, read as it comes.
type screen struct {
	mu   sync.Mutex
	text []byte
}

// show reads the terminal's output until it is closed.
func (s *screen) show(master io.Reader) {
	chunk := make([]byte, 4096)
	for {
		n, err := master.Read(chunk)
		s.mu.Lock()
		s.text = append(s.text, chunk[:n]...)
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.text)
}

func (s *screen) waitFor(t *testing.T, text string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(s.String(), text) {
			return fmt.Errorf("the terminal shows %q, not yet %q", s.String(), text)
		}
		return nil
	})
}

// TestExecTerminal runs `exec -it` on a real terminal, as a user's shell
// session: the container sees a terminal of the user's size, follows a
// resize (SIGWINCH), reads what is typed, and the user's terminal is left
// as it was.
func TestExecTerminal(t *testing.T) {
	n := startNode(t)
	ns := env.Namespace(t, "tty")
	k := n.plugin(t, ns, true)
	pod := n.runPod(t, ns, nil, corev1.RestartPolicyAlways, 0, `trap 'exit 0' TERM; while true; do sleep 0.1; done`)

	master, terminal := openPTY(t, 40, 100)
	before, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	var shown screen
	go shown.show(master)

	var errOut bytes.Buffer
	cmd := kubectlskiff.NewRootCommand(genericiooptions.IOStreams{In: terminal, Out: terminal, ErrOut: &errOut})
	// The terminal's size reaches the container a moment after it starts.
	script := `tty -s && echo is-a-tty; sleep 0.5; stty size; read line; stty size; echo "typed:$line"`
	cmd.SetArgs([]string{"--kubeconfig", k.Kubeconfig, "-n", ns, "exec", "-it", pod.Name, "--", "sh", "-c", script})
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()

	shown.waitFor(t, "40 100")
	resize(t, terminal, 50, 120)
	if err := unix.Kill(os.Getpid(), unix.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the resize travels on its own stream
	if _, err := master.WriteString("hello\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exec -it: %v; stderr %q", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("exec -it did not end; the terminal shows %q", shown.String())
	}
	shown.waitFor(t, "typed:hello")
	for _, want := range []string{"is-a-tty\r\n", "40 100\r\n", "50 120\r\n", "typed:hello\r\n"} {
		if !strings.Contains(shown.String(), want) {
			t.Errorf("the terminal shows %q, without %q", shown.String(), want)
		}
	}
	after, err := unix.IoctlGetTermios(int(terminal.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Errorf("the terminal was left in another mode: %+v, was %+v", after, before)
	}
}
