package network

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// failed is what a request that got no answer counts as (a word that the
// shell leaves alone).
const failed = "no-answer"

// requests sends n requests from a client pod in one exec (an exec costs
// far more than a request) and returns the answers in order: the pod name
// each echo server answered with, or failed.
//
// kind is "http" (GET http://target/, target being host[:port]) or "udp"
// (one datagram to target, host:port, with echo's UDP client).
func (c *cluster) requests(t *testing.T, client *skiffcorev1.Pod, kind, target string, n int) []string {
	t.Helper()
	one := map[string]string{
		"http": "timeout 3 wget -qO- http://" + target + "/",
		"udp":  "/echo udp " + target,
	}[kind]
	script := fmt.Sprintf("for i in $(seq %d); do %s 2>/dev/null || echo %s; done", n, one, failed)
	out, err := c.execIn(t, client, "sh", "-c", script)
	if err != nil {
		t.Fatalf("requests to %s %s from %s: %v", kind, target, client.Name, err)
	}
	return strings.Fields(out)
}

// tally counts the answers by pod name.
func tally(answers []string) map[string]int {
	counts := map[string]int{}
	for _, a := range answers {
		counts[a]++
	}
	return counts
}

// eventuallyServedBy sends rounds of n requests until one round is
// answered by exactly the pods named want (each at least once, no other,
// no failure), and fails the test if none is within trafficLimit.
func (c *cluster) eventuallyServedBy(t *testing.T, client *skiffcorev1.Pod, kind, target string, n int, want []string) {
	t.Helper()
	testenv.Eventually(t, trafficLimit, func() error {
		got := tally(c.requests(t, client, kind, target, n))
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("%d %s requests to %s from %s (node %s) were answered by %v, want each of %v and no other", n, kind, target, client.Name, client.Spec.NodeName, got, want)
		}
		return nil
	})
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	began := time.Now()
	f()
	return time.Since(began)
}
