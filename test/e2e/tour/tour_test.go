// Package tour walks docs/tour.md as written: it starts a three-node
// cluster with `make up`'s program, then runs every command of the page's
// console blocks, in order, in bash from the repository's root, and checks
// each one's output against the output the page shows under it.
//
// The page is for people, so the comparison forgives what differs between
// runs (generated names, addresses, ages; see internal/doctest) and a
// command is run again until its output matches, for up to
// commandTimeout: "within a minute the CronJob starts its first Job" is a
// wait a reader does by hand. A command whose shown output says "error:"
// must fail; every other one must succeed.
//
// Two kinds of command are the test's own to carry out: `make up`, because
// the test starts its cluster on private names and ranges that never clash
// with a user's `make up` (node names sktour-N where the page shows vm-N),
// and the `export` of that cluster's KUBECONFIG and PATH.
package tour

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/doctest"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
)

// The cluster's private names and ranges, apart from a user's `make up`
// and from the other suites that start clusters (test/e2e/network, hack/up).
var config = uptest.ClusterConfig{
	Nodes:       3,
	Prefix:      "sktour",
	NodeNetwork: "10.252.0.0/24",
	ClusterCIDR: "10.247.0.0/16",
	ServiceCIDR: "10.100.0.0/16",
	AgentPort:   29092,
	WorkPrefix:  "skiff-e2e-tour-",
}

const (
	page = "docs/tour.md"
	// commandTimeout bounds the retries of one command; the longest wait
	// of the tour is a node's grace period (50s) plus its pods' toleration.
	commandTimeout = 3 * time.Minute
	retryInterval  = 2 * time.Second
)

// normalizer forgives, besides internal/doctest's defaults, the node names:
// the page's vm-N are the test's sktour-N.
var normalizer = doctest.DefaultNormalizer().With(regexp.MustCompile(`\b(vm|`+config.Prefix+`)-\d+\b`), "NODE")

func TestTour(t *testing.T) {
	uptest.RequireMachine(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		t.Fatal(err)
	}
	commands, err := doctest.Parse(text)
	if err != nil {
		t.Fatalf("%s: %v", page, err)
	}

	c, err := uptest.StartCluster(config)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	sh := newShell(t, root, c)
	for _, cmd := range commands {
		if ours(cmd) {
			continue
		}
		began := time.Now()
		if err := sh.runUntilMatch(cmd); err != nil {
			t.Fatalf("%s:%d: %v", page, cmd.Line, err)
		}
		t.Logf("%s:%d: %s (%s)", page, cmd.Line, firstLine(cmd.Text), time.Since(began).Round(100*time.Millisecond))
	}

	// The page says `make up` restarted the agent that was killed.
	if !strings.Contains(c.Run.Output(), "(signal: killed); starting it again") {
		t.Errorf("up did not say it restarted the killed node agent; its output:\n%s", c.Run.Output())
	}
}

// ours reports whether cmd is one the test carries out itself.
func ours(cmd doctest.Command) bool {
	return strings.HasPrefix(cmd.Text, "make up") || strings.HasPrefix(cmd.Text, "export ")
}

// shell runs the page's commands as a reader's terminal would: from the
// repository's root, with the cluster's KUBECONFIG, the checkout's
// kubectl-skiff and bin/ on the PATH, and the variables earlier commands
// assigned.
type shell struct {
	t    *testing.T
	dir  string
	env  []string
	vars map[string]string
}

func newShell(t *testing.T, root string, c *uptest.Cluster) *shell {
	bin := filepath.Join(c.Work, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kubectl-skiff"), "./cmd/kubectl-skiff")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-skiff: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"KUBECONFIG="+c.Kubeconfig,
		"PATH="+bin+string(os.PathListSeparator)+filepath.Join(root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	return &shell{t: t, dir: root, env: env, vars: map[string]string{}}
}

// assignment matches a command that only sets a variable, NAME=$(...).
var assignment = regexp.MustCompile(`^([A-Z_][A-Z0-9_]*)=\$\(`)

// runUntilMatch runs cmd until its output and exit status are what the
// page shows, or commandTimeout passes.
func (s *shell) runUntilMatch(cmd doctest.Command) error {
	deadline := time.Now().Add(commandTimeout)
	for {
		err := s.runOnce(cmd)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(retryInterval)
	}
}

// runOnce runs cmd once and says how its result differs from the page's.
func (s *shell) runOnce(cmd doctest.Command) error {
	script := cmd.Text
	name := ""
	if m := assignment.FindStringSubmatch(cmd.Text); m != nil {
		name = m[1]
		// The value goes to a descriptor of its own, so that what the
		// command prints is still compared with the page.
		script += fmt.Sprintf("\nprintf %%s \"$%s\" >&3", name)
	}
	out, value, err := s.bash(script)
	if e := checkExit(cmd.Output, err); e != nil {
		return fmt.Errorf("%s\n%w\nits output:\n%s", cmd.Text, e, out)
	}
	if e := doctest.Match(cmd.Output, strings.Split(out, "\n"), normalizer); e != nil {
		return fmt.Errorf("%s\n%w", cmd.Text, e)
	}
	if name != "" {
		if value == "" {
			return fmt.Errorf("%s\nset %s to nothing", cmd.Text, name)
		}
		s.vars[name] = value
	}
	return nil
}

// bash runs script, reading it from standard input rather than from its
// command line, so that the page's `pkill -f PATTERN` never matches the
// shell that runs it. It returns the combined output and what the script
// wrote to descriptor 3.
func (s *shell) bash(script string) (out, fd3 string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return "", "", err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, "bash", "-s")
	cmd.Dir, cmd.Stdin, cmd.ExtraFiles = s.dir, strings.NewReader(script), []*os.File{w}
	cmd.Env = append([]string(nil), s.env...)
	for k, v := range s.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var combined bytes.Buffer
	cmd.Stdout, cmd.Stderr = &combined, &combined
	if err := cmd.Start(); err != nil {
		w.Close()
		return "", "", err
	}
	w.Close()
	var value bytes.Buffer
	_, _ = value.ReadFrom(r)
	err = cmd.Wait()
	return combined.String(), value.String(), err
}

// checkExit compares how a command ended with what its shown output
// implies: kubectl's failures print "error: ..." or "Error from server".
func checkExit(shown []string, err error) error {
	wantFailure := false
	for _, line := range shown {
		if strings.HasPrefix(line, "error:") || strings.HasPrefix(line, "Error from server") {
			wantFailure = true
		}
	}
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		return err
	case wantFailure && err == nil:
		return errors.New("it succeeded; the page shows it failing")
	case !wantFailure && err != nil:
		return fmt.Errorf("it failed (%v); the page shows it succeeding", err)
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
