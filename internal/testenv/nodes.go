package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/simulated"
)

// SimulatedNodes are the nodes StartSimulatedNodes runs: Prefix-0 to
// Prefix-(Count-1), each with CPU cores (4 by default), 16Gi and 110 pods.
type SimulatedNodes struct {
	Prefix string
	Count  int
	CPU    string
	// InstanceType, when set, labels the nodes, so that a test can keep its
	// pods on its own nodes.
	InstanceType string
	// Runtime is the simulated runtime's timetable.
	Runtime simulated.Options
	// LeaseRenewInterval is the heartbeat (1s by default), short enough for
	// a test's node monitor grace period.
	LeaseRenewInterval time.Duration
}

// StartSimulatedNodes runs simulated node agents in this process until the
// test ends, waits until they have registered, and deletes their Nodes
// afterwards, so that the next test's scheduler binds nothing to nodes
// nobody runs.
func (e *Env) StartSimulatedNodes(t testing.TB, s SimulatedNodes) *nodeagent.Host {
	t.Helper()
	if s.CPU == "" {
		s.CPU = "4"
	}
	if s.LeaseRenewInterval == 0 {
		s.LeaseRenewInterval = time.Second
	}
	opts := nodeagent.Options{
		NewRuntime:         func(string) nodeagent.Runtime { return simulated.New(s.Runtime) },
		LeaseRenewInterval: s.LeaseRenewInterval,
	}
	for i := range s.Count {
		opts.Nodes = append(opts.Nodes, nodeagent.NodeConfig{
			Name:         fmt.Sprintf("%s-%d", s.Prefix, i),
			InstanceType: s.InstanceType,
			InternalIP:   fmt.Sprintf("192.0.2.%d", i+1),
			Capacity: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(s.CPU),
				corev1.ResourceMemory: resource.MustParse("16Gi"),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
		})
	}
	host, err := nodeagent.NewHost(e.FastConfig(), opts)
	if err != nil {
		t.Fatalf("creating simulated nodes: %v", err)
	}
	// Cleanups run last first: the host stops before its Nodes go.
	t.Cleanup(func() {
		for _, name := range host.NodeNames() {
			n := &skiffcorev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if err := e.Client.Delete(context.Background(), n); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting node %s: %v", name, err)
			}
		}
	})
	Run(t, "the simulated nodes", host.Start)
	Eventually(t, 60*time.Second, func() error {
		if got := host.Registered(); got < s.Count {
			return fmt.Errorf("%d of %d simulated nodes registered", got, s.Count)
		}
		return nil
	})
	return host
}
