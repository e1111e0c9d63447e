package network

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// servedWithin bounds how long after the test sees the EndpointSlice change
// the client may still see the old set of backends. The datapath should
// follow within about a second; the bound is generous, since the machine is
// loaded, and the measured time is logged.
const servedWithin = 5 * time.Second

// Scaling the Deployment changes the set of backends a client of the
// Service sees, soon after the EndpointSlice changes. A client pod sends a
// request every 50 ms through the cluster IP and logs the time and the
// answer; the test compares the moment the log shows the new set with the
// moment it saw the EndpointSlice change.
func TestScalingChangesTheBackendsSoon(t *testing.T) {
	c := requireCluster(t)
	ns := c.namespace(t)
	svc := c.createService(t, echoService(ns, "web"))
	deploy := echoDeployment(ns, "web", 1)
	loop := `while true; do r=$(timeout 2 wget -qO- http://` + svc.Spec.ClusterIP + `/ 2>/dev/null || echo ` + failed + `); echo "$EPOCHREALTIME $r"; sleep 0.05; done >/tmp/log`
	from := clientPod(ns, "client", c.Nodes[0].Name, loop)
	c.create(t, deploy, from)
	c.waitReady(t, from)
	c.waitForApp(t, ns, "web", 1)

	since := time.Time{}
	for _, replicas := range []int32{1, 3, 2} {
		t.Logf("scaling to %d", replicas)
		if replicas != *deploy.Spec.Replicas {
			patch := client.MergeFrom(deploy.DeepCopy())
			deploy.Spec.Replicas = ptr.To(replicas)
			if err := c.Client.Patch(context.Background(), deploy, patch); err != nil {
				t.Fatal(err)
			}
		}
		sliceChanged := c.waitForEndpoints(t, ns, "web", int(replicas))
		want := podNames(c.waitForApp(t, ns, "web", int(replicas)))
		allReady := time.Now()
		var served time.Time
		testenv.Eventually(t, trafficLimit, func() error {
			samples, err := c.samples(t, from, since)
			if err != nil {
				return err
			}
			var ok bool
			if served, ok = convergedAt(samples, want); !ok {
				return fmt.Errorf("the client has not seen exactly %v since %s; its last answers: %v", want, since.Format(time.RFC3339Nano), lastSamples(samples, 10))
			}
			return nil
		})
		t.Logf("%d replicas %v: the client saw them %s after the test saw the EndpointSlice change (%s after it saw every pod Ready)",
			replicas, want, served.Sub(sliceChanged).Round(time.Millisecond), served.Sub(allReady).Round(time.Millisecond))
		if late := served.Sub(sliceChanged); late > servedWithin {
			t.Errorf("the client saw the new backends %v only %s after the EndpointSlice changed, want within %s", want, late, servedWithin)
		}
		since = time.Now()
	}
}

// waitForEndpoints waits until the Service's EndpointSlices list exactly n
// ready endpoints, and returns when the test saw that.
func (c *cluster) waitForEndpoints(t *testing.T, ns, svc string, n int) time.Time {
	t.Helper()
	testenv.Eventually(t, podTimeout, func() error {
		var list skiffcorev1.EndpointSliceList
		if err := c.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{skiffcorev1.LabelServiceName: svc}); err != nil {
			return err
		}
		var ready []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if ptr.Deref(e.Conditions.Ready, false) {
					ready = append(ready, strings.Join(e.Addresses, ","))
				}
			}
		}
		if len(ready) != n {
			return fmt.Errorf("the EndpointSlices of %s list %d ready endpoints %v, want %d", svc, len(ready), ready, n)
		}
		return nil
	})
	return time.Now()
}

// sample is one request of the client's loop: when it was answered, and by
// which pod.
type sample struct {
	at     time.Time
	answer string
}

// samples reads the client's log, keeping the samples after since.
func (c *cluster) samples(t *testing.T, from *skiffcorev1.Pod, since time.Time) ([]sample, error) {
	out, err := c.execIn(t, from, "cat", "/tmp/log")
	if err != nil {
		return nil, err
	}
	var kept []sample
	for _, s := range parseSamples(out) {
		if !s.at.Before(since) {
			kept = append(kept, s)
		}
	}
	return kept, nil
}

// parseSamples reads lines of "<seconds since the epoch> <answer>", as the
// client's loop writes them; lines being written are skipped.
func parseSamples(log string) []sample {
	var samples []sample
	for _, line := range strings.Split(log, "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue
		}
		secs, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		samples = append(samples, sample{at: time.Unix(0, int64(secs*1e9)), answer: fields[1]})
	}
	return samples
}

// convergedAt is the moment the samples show the backends want and only
// them: after the last answer from any other backend (or a failure), the
// time of the answer that completes the set. ok is false while the samples
// do not show that yet.
func convergedAt(samples []sample, want []string) (at time.Time, ok bool) {
	start := 0
	for i, s := range samples {
		if !slices.Contains(want, s.answer) {
			start = i + 1
		}
	}
	seen := map[string]bool{}
	for _, s := range samples[start:] {
		seen[s.answer] = true
		if len(seen) == len(want) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func lastSamples(samples []sample, n int) []string {
	var out []string
	for _, s := range samples[max(0, len(samples)-n):] {
		out = append(out, s.at.Format("15:04:05.000")+" "+s.answer)
	}
	return out
}

// The convergence point of the client's log, on made-up logs.
func TestConvergedAt(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(1000, int64(ms)*int64(time.Millisecond)) }
	log := func(answers ...string) []sample {
		var s []sample
		for i, a := range answers {
			s = append(s, sample{at: at(100 * i), answer: a})
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		samples []sample
		want    []string
		at      time.Time
		ok      bool
	}{
		{"empty log", nil, []string{"a"}, time.Time{}, false},
		{"one backend from the start", log("a", "a"), []string{"a"}, at(0), true},
		{"scale up: the set completes with the last newcomer", log("a", "a", "b", "a", "c", "b"), []string{"a", "b", "c"}, at(400), true},
		{"scale up not seen yet", log("a", "b", "a"), []string{"a", "b", "c"}, time.Time{}, false},
		{"scale down: after the last answer of a removed backend", log("a", "c", "b", "c", "a", "b"), []string{"a", "b"}, at(500), true},
		{"a failure restarts the count", log("a", "b", failed, "a", "a", "b"), []string{"a", "b"}, at(500), true},
		{"the log ends with a removed backend", log("a", "b", "c"), []string{"a", "b"}, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := convergedAt(tc.samples, tc.want)
			if ok != tc.ok || !got.Equal(tc.at) {
				t.Errorf("convergedAt = %v, %v; want %v, %v", got, ok, tc.at, tc.ok)
			}
		})
	}
}

func TestParseSamples(t *testing.T) {
	got := parseSamples("1795630580.843400 web-a\n1795630581.5 " + failed + "\nnot a sample\n1795630582.0")
	want := []sample{{time.Unix(1795630580, 843400000), "web-a"}, {time.Unix(1795630581, 500000000), failed}}
	if len(got) != len(want) {
		t.Fatalf("parseSamples = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].answer != want[i].answer || got[i].at.Sub(want[i].at).Abs() > time.Microsecond {
			t.Errorf("sample %d = %v, want %v", i, got[i], want[i])
		}
	}
}
