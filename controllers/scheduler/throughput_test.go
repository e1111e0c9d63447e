package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// BenchmarkBindingRate compares the scheduler's binding rate with the
// apiserver's raw rate for the same binding patches, written by 16
// workers, on 200 nodes and 2,000 pods. Both are timed from the first
// binding a watch sees to the last, so the scheduler's start-up is not
// counted. It needs the test cluster and runs once:
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test ./controllers/scheduler/ -run XXX -bench BindingRate -benchtime 1x
func BenchmarkBindingRate(b *testing.B) {
	const nodes, pods, workers = 200, 2000, 16
	for i := 0; i < b.N; i++ {
		ns := fmt.Sprintf("bench-%d-%d", time.Now().Unix(), i)
		label := map[string]string{"skiff.dev/test": ns}
		ctx := context.Background()
		cfg := rest.CopyConfig(env.Config)
		cfg.QPS, cfg.Burst = 1000, 2000
		cl, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			b.Fatal(err)
		}
		if err := cl.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
		for j := range nodes {
			n := node(fmt.Sprintf("%s-n%03d", ns, j), "64", "64Gi", 110, label)
			status := n.Status
			if err := cl.Create(ctx, n); err != nil {
				b.Fatal(err)
			}
			n.Status = status
			if err := cl.Status().Update(ctx, n); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = cl.Delete(context.Background(), n) }()
		}
		// The raw pods name another scheduler, so that this one leaves them.
		raw := createPods(b, cl, ns, "raw", "other-scheduler", label, pods, workers)
		rawRate := timeBindings(b, cl, ns, "raw", pods, func() {
			parallel(workers, raw, func(p *skiffcorev1.Pod) {
				target := &skiffcorev1.Pod{}
				target.Namespace, target.Name = p.Namespace, p.Name
				if err := cl.Patch(ctx, target, client.RawPatch(types.MergePatchType, bindingPatch(p, ns+"-n000"))); err != nil {
					b.Error(err)
				}
			})
		})
		createPods(b, cl, ns, "sched", "", label, pods, workers)
		rate := timeBindings(b, cl, ns, "sched", pods, func() {
			env.StartManager(b, func(m ctrl.Manager) error { return Setup(m, Config{BindWorkers: workers}) })
		})
		b.ReportMetric(rawRate, "raw-binds/s")
		b.ReportMetric(rate, "sched-binds/s")
		b.ReportMetric(100*rate/rawRate, "%raw")
	}
}

// createPods creates n pending pods named prefix-N in ns.
func createPods(b *testing.B, cl client.Client, ns, prefix, scheduler string, selector map[string]string, n, workers int) []*skiffcorev1.Pod {
	var out []*skiffcorev1.Pod
	for i := range n {
		p := pod(fmt.Sprintf("%s-%04d", prefix, i), "10m", "", withNodeSelector(selector))
		p.Namespace, p.UID, p.CreationTimestamp = ns, "", metav1.Time{}
		p.Spec.SchedulerName = scheduler
		out = append(out, p)
	}
	parallel(workers, out, func(p *skiffcorev1.Pod) {
		if err := cl.Create(context.Background(), p); err != nil {
			b.Error(err)
		}
	})
	return out
}

func parallel(workers int, pods []*skiffcorev1.Pod, f func(*skiffcorev1.Pod)) {
	ch := make(chan *skiffcorev1.Pod)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for p := range ch {
				f(p)
			}
		})
	}
	for _, p := range pods {
		ch <- p
	}
	close(ch)
	wg.Wait()
}

// timeBindings runs start and returns the rate at which a watch sees the
// n pods named prefix-* get bound, from the first binding to the last.
func timeBindings(b *testing.B, cl client.WithWatch, ns, prefix string, n int, start func()) float64 {
	var list skiffcorev1.PodList
	if err := cl.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	w, err := cl.Watch(context.Background(), &skiffcorev1.PodList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	type result struct {
		first, last time.Time
		err         error
	}
	done := make(chan result, 1)
	go func() {
		bound := map[string]bool{}
		var r result
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*skiffcorev1.Pod)
			if !ok || ev.Type == watch.Deleted || p.Spec.NodeName == "" || !strings.HasPrefix(p.Name, prefix) || bound[p.Name] {
				continue
			}
			if r.first.IsZero() {
				r.first = time.Now()
			}
			bound[p.Name] = true
			if len(bound) == n {
				r.last = time.Now()
				done <- r
				return
			}
		}
		done <- result{err: fmt.Errorf("the watch ended after %d of %d %s pods were bound", len(bound), n, prefix)}
	}()
	start()
	select {
	case r := <-done:
		if r.err != nil {
			b.Fatal(r.err)
		}
		return float64(n-1) / r.last.Sub(r.first).Seconds()
	case <-time.After(5 * time.Minute):
		b.Fatalf("the %s pods were not all bound after 5 minutes", prefix)
	}
	return 0
}
