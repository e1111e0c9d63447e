package nodeagent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/simulated"
)

// BenchmarkHostStarts1000Nodes measures how long `nodeagent --simulate=1000`
// takes until every node is registered and Ready, and how long it takes
// to stop.
func BenchmarkHostStarts1000Nodes(b *testing.B) {
	const n = 1000
	round := 0
	for b.Loop() {
		prefix := fmt.Sprintf("bench%d", round)
		round++
		nodes, err := simulated.Fleet{Prefix: prefix, Count: n}.Nodes()
		if err != nil {
			b.Fatal(err)
		}
		cfg := rest.CopyConfig(env.Config)
		cfg.QPS, cfg.Burst = 1000, 2000
		host, err := nodeagent.NewHost(cfg, nodeagent.Options{Nodes: nodes, NewRuntime: simulated.Runtimes(simulated.Options{})})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- host.Start(ctx) }()
		for ready := 0; ready < n; {
			if time.Since(began) > 5*time.Minute {
				b.Fatalf("%d of %d nodes Ready after 5 minutes", ready, n)
			}
			time.Sleep(200 * time.Millisecond)
			list := &skiffcorev1.NodeList{}
			if err := env.Client.List(context.Background(), list); err != nil {
				b.Fatal(err)
			}
			ready = 0
			for i := range list.Items {
				if strings.HasPrefix(list.Items[i].Name, prefix+"-") && nodeReady(&list.Items[i]) == nil {
					ready++
				}
			}
		}
		b.ReportMetric(time.Since(began).Seconds(), "s-to-ready")
		stopping := time.Now()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(stopping).Seconds(), "s-to-stop")
	}
}
