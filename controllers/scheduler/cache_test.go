package scheduler

import (
	"encoding/json"
	"testing"
	"time"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TestAssumeConfirmForgetExpire follows an assumed pod's life in the cache.
func TestAssumeConfirmForgetExpire(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := NewCache(clock.now)
	c.AddOrUpdateNode(node("n1", "4", "8Gi", 110, nil))
	ni := c.Nodes()[0]
	requested := func() int64 { return ni.requested.milliCPU }

	// Assumed: counts at once.
	a := info(pod("a", "1", ""))
	c.Lock()
	c.Assume(a, "n1")
	c.Unlock()
	if requested() != 1000 || !c.IsAssumedOrBound(a.Pod.UID) {
		t.Fatalf("after assume: %dm requested", requested())
	}
	// Forgotten when the binding fails.
	c.Forget(a.Pod.UID)
	if requested() != 0 || c.IsAssumedOrBound(a.Pod.UID) {
		t.Fatalf("after forget: %dm requested", requested())
	}
	// Confirmed by the informer: counted once, and no longer expires.
	c.Lock()
	c.Assume(a, "n1")
	c.Unlock()
	c.FinishBinding(a.Pod.UID)
	bound := a.Pod.DeepCopy()
	bound.Spec.NodeName = "n1"
	c.AddOrUpdatePod(info(bound))
	clock.t = clock.t.Add(time.Hour)
	if n := c.Expire(); n != 0 || requested() != 1000 {
		t.Fatalf("a confirmed pod expired (%d) or is counted wrong (%dm)", n, requested())
	}
	// An assumption never confirmed expires after its binding returned.
	b := info(pod("b", "1", ""))
	c.Lock()
	c.Assume(b, "n1")
	c.Unlock()
	clock.t = clock.t.Add(time.Hour)
	if c.Expire() != 0 {
		t.Fatal("an assumption expired while its binding was in flight")
	}
	c.FinishBinding(b.Pod.UID)
	clock.t = clock.t.Add(assumedTTL + time.Second)
	if n := c.Expire(); n != 1 || requested() != 1000 {
		t.Fatalf("expired %d, %dm requested; want 1 and 1000m", n, requested())
	}
	// Deleted pods free their room; a terminating one still counts.
	going := bound.DeepCopy()
	going.DeletionTimestamp = &going.CreationTimestamp
	c.AddOrUpdatePod(info(going))
	if requested() != 1000 {
		t.Fatalf("a terminating pod stopped counting: %dm", requested())
	}
	c.RemovePod(a.Pod.UID)
	if requested() != 0 || len(ni.Pods()) != 0 {
		t.Fatalf("after delete: %dm, %d pods", requested(), len(ni.Pods()))
	}
}

// TestPodsBeforeTheirNode checks that a pod seen before its node still
// counts once the node appears.
func TestPodsBeforeTheirNode(t *testing.T) {
	c := NewCache(time.Now)
	p := pod("a", "1", "")
	p.Spec.NodeName = "late"
	c.AddOrUpdatePod(info(p))
	if len(c.Nodes()) != 0 {
		t.Fatal("a placeholder node is schedulable")
	}
	c.AddOrUpdateNode(node("late", "4", "8Gi", 110, nil))
	if got := c.Nodes()[0].requested.milliCPU; got != 1000 {
		t.Fatalf("%dm requested, want 1000m", got)
	}
}

func TestBindingPatch(t *testing.T) {
	p := pod("p", "", "")
	p.ResourceVersion = "42"
	p.Finalizers = []string{"example.com/keep"}
	var got struct {
		Metadata struct {
			ResourceVersion string   `json:"resourceVersion"`
			Finalizers      []string `json:"finalizers"`
		} `json:"metadata"`
		Spec struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(bindingPatch(p, "n1"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.ResourceVersion != "42" || got.Spec.NodeName != "n1" ||
		len(got.Metadata.Finalizers) != 2 || got.Metadata.Finalizers[1] != skiffcorev1.PodTerminationFinalizer {
		t.Fatalf("patch %+v", got)
	}
	if len(p.Finalizers) != 1 {
		t.Fatal("the patch changed the cached pod")
	}
	p.Finalizers = append(p.Finalizers, skiffcorev1.PodTerminationFinalizer)
	_ = json.Unmarshal(bindingPatch(p, "n1"), &got)
	if len(got.Metadata.Finalizers) != 2 {
		t.Fatalf("finalizer added twice: %v", got.Metadata.Finalizers)
	}
}
