package nodeipam

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// TestAllocation walks a small cluster CIDR (10.244.0.0/19: 32 ranges of /24)
// from a node registered with its own range, through 20 nodes registering at
// once, to exhaustion and the reuse of a deleted node's range.
func TestAllocation(t *testing.T) {
	ctx := context.Background()
	c := env.Client
	cluster := netip.MustParsePrefix("10.244.0.0/19")
	t.Cleanup(func() { _ = c.DeleteAllOf(ctx, &skiffcorev1.Node{}) })

	// A node that brought its own range before the controller starts: the
	// controller must learn it before its first allocation, whose natural
	// pick would be this very range.
	preset := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "preset"}}
	preset.Spec.PodCIDR = "10.244.0.0/24"
	preset.Spec.PodCIDRs = []string{"10.244.0.0/24"}
	if err := c.Create(ctx, preset); err != nil {
		t.Fatal(err)
	}

	env.StartManager(t, func(m ctrl.Manager) error {
		return setup(m, Config{ClusterCIDR: cluster.String(), NodeCIDRMaskSize: 24}, options{retryExhausted: time.Second})
	})

	// 20 nodes register at once.
	createNodes(t, 0, 20)
	waitForDistinctCIDRs(t, cluster, 21)

	// 11 more fill the cluster CIDR: 1 + 20 + 11 = 32 ranges.
	createNodes(t, 20, 31)
	ranges := waitForDistinctCIDRs(t, cluster, 32)
	if ranges["preset"] != "10.244.0.0/24" {
		t.Fatalf("the preset node's range changed to %q", ranges["preset"])
	}

	// One more finds nothing left, and says so in an Event.
	if err := c.Create(ctx, &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "overflow"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var events eventsv1.EventList
		if err := c.List(ctx, &events); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Regarding.Name == "overflow" && e.Reason == "CIDRNotAvailable" && e.Type == "Warning" {
				return nil
			}
		}
		return fmt.Errorf("no CIDRNotAvailable Event for node overflow among %d events", len(events.Items))
	})
	var overflow skiffcorev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: "overflow"}, &overflow); err != nil {
		t.Fatal(err)
	}
	if overflow.Spec.PodCIDR != "" {
		t.Fatalf("node overflow got %s from a full cluster CIDR", overflow.Spec.PodCIDR)
	}

	// Deleting a node frees its range for the waiting one.
	freed := ranges["node-07"]
	if err := c.Delete(ctx, &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-07"}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKey{Name: "overflow"}, &overflow); err != nil {
			return err
		}
		if overflow.Spec.PodCIDR != freed {
			return fmt.Errorf("node overflow has podCIDR %q, want the freed %s", overflow.Spec.PodCIDR, freed)
		}
		return nil
	})
	waitForDistinctCIDRs(t, cluster, 32)
}

// createNodes creates node-<from> to node-<to-1> concurrently, as a fleet
// booting together would.
func createNodes(t *testing.T, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	for i := from; i < to; i++ {
		wg.Go(func() {
			n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%02d", i)}}
			errs <- env.Client.Create(context.Background(), n)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// waitForDistinctCIDRs waits until want nodes each have a podCIDR inside
// cluster, no two the same, with podCIDRs matching, and returns them by node.
func waitForDistinctCIDRs(t *testing.T, cluster netip.Prefix, want int) map[string]string {
	t.Helper()
	var byNode map[string]string
	testenv.Eventually(t, 60*time.Second, func() error {
		var nodes skiffcorev1.NodeList
		if err := env.Client.List(context.Background(), &nodes); err != nil {
			return err
		}
		byNode = map[string]string{}
		owner := map[string]string{}
		for _, n := range nodes.Items {
			if n.Spec.PodCIDR == "" {
				continue
			}
			p, err := netip.ParsePrefix(n.Spec.PodCIDR)
			if err != nil || p.Bits() != 24 || !cluster.Contains(p.Addr()) {
				t.Fatalf("node %s: podCIDR %q is not a /24 inside %s", n.Name, n.Spec.PodCIDR, cluster)
			}
			if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
				t.Fatalf("node %s: podCIDRs %v do not match podCIDR %s", n.Name, n.Spec.PodCIDRs, n.Spec.PodCIDR)
			}
			if other, dup := owner[n.Spec.PodCIDR]; dup {
				t.Fatalf("nodes %s and %s share podCIDR %s", other, n.Name, n.Spec.PodCIDR)
			}
			owner[n.Spec.PodCIDR] = n.Name
			byNode[n.Name] = n.Spec.PodCIDR
		}
		if len(byNode) != want {
			return fmt.Errorf("%d nodes have a podCIDR, want %d", len(byNode), want)
		}
		return nil
	})
	return byNode
}
