package nodeagent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/simulated"
)

// TestNodeEvents reads the Events the agent records about its Node, in
// upstream's kubelet's words: its start, its readiness, and each cordon
// and uncordon, once each.
func TestNodeEvents(t *testing.T) {
	const name = "events-0"
	startHost(t, hostOptions(simulated.Options{}, simNode(name, "10.200.9.1")))
	node := waitNodeReady(t, name)
	waitNodeEvents(t, node, map[string]string{
		"Starting":  "Starting kubelet.",
		"NodeReady": "Node events-0 status is now: NodeReady",
	})

	for _, tc := range []struct {
		unschedulable bool
		reason        string
	}{
		{true, "NodeNotSchedulable"},
		{false, "NodeSchedulable"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			setUnschedulable(t, name, tc.unschedulable)
			waitNodeEvents(t, node, map[string]string{tc.reason: "Node events-0 status is now: " + tc.reason})
		})
	}
	// Nothing was told twice, nor a readiness that did not change.
	time.Sleep(2 * time.Second)
	counts := map[string]int{}
	for _, e := range nodeEvents(t, node) {
		counts[e.Reason] += countOf(e)
	}
	want := map[string]int{"Starting": 1, "NodeReady": 1, "NodeNotSchedulable": 1, "NodeSchedulable": 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("the node's Events by reason: %v, want %v", counts, want)
	}
}

// countOf is how many times an Event happened: once, plus its series'.
func countOf(e eventsv1.Event) int {
	if e.Series != nil {
		return int(e.Series.Count)
	}
	return 1
}

// nodeEvents lists the Events about node, by its UID.
func nodeEvents(t *testing.T, node *skiffcorev1.Node) []eventsv1.Event {
	t.Helper()
	return env.EventsAbout(t, node.UID)
}

// waitNodeEvents waits for a Normal Event of the kubelet about node with
// each reason and its note.
func waitNodeEvents(t *testing.T, node *skiffcorev1.Node, want map[string]string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		got := map[string]eventsv1.Event{}
		for _, e := range nodeEvents(t, node) {
			got[e.Reason] = e
		}
		for reason, note := range want {
			e, ok := got[reason]
			if !ok {
				return fmt.Errorf("no %s Event about node %s among %d", reason, node.Name, len(got))
			}
			if e.Note != note || e.Type != corev1.EventTypeNormal || e.ReportingController != "kubelet" ||
				e.Regarding.Kind != "Node" || e.Regarding.APIVersion != skiffcorev1.GroupVersion.String() {
				t.Fatalf("%s Event: %s %q by %q about %s %s, want Normal %q by kubelet about the Node of %s",
					reason, e.Type, e.Note, e.ReportingController, e.Regarding.APIVersion, e.Regarding.Kind, note, skiffcorev1.GroupVersion)
			}
		}
		return nil
	})
}

// setUnschedulable cordons or uncordons a node, as kubectl cordon does.
func setUnschedulable(t *testing.T, name string, unschedulable bool) {
	t.Helper()
	node := &skiffcorev1.Node{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Spec.Unschedulable = unschedulable
	if err := env.Client.Patch(context.Background(), node, patch); err != nil {
		t.Fatal(err)
	}
}
