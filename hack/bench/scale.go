package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// runScale is issue 3's benchmark: N simulated nodes, then pods created at
// once through ReplicaSets, scheduled and run; then, on the same apiserver,
// the raw rate of the same binding writes with no scheduler.
func runScale(ctx context.Context, o options) (table, error) {
	t := table{title: fmt.Sprintf("Scheduling: %d simulated nodes, %d pods through %d ReplicaSets", o.nodes, o.pods, o.pods/o.replicas)}
	env, err := testenv.Start()
	if err != nil {
		return t, err
	}
	defer env.Stop()
	dir, err := os.MkdirTemp("", "skiff-bench-")
	if err != nil {
		return t, err
	}
	kubeconfig, err := env.WriteAdminKubeconfig(dir)
	if err != nil {
		return t, err
	}
	c, err := client.New(fastConfig(env), client.Options{Scheme: env.Scheme})
	if err != nil {
		return t, err
	}

	agent, err := startProcess("nodeagent", dir, filepath.Join(o.bin, "nodeagent"),
		"--kubeconfig="+kubeconfig, "--simulate="+strconv.Itoa(o.nodes),
		"--health-probe-bind-address=0", "--metrics-bind-address=0")
	if err != nil {
		return t, err
	}
	defer agent.stop()
	began := time.Now()
	if err := waitForReadyNodes(ctx, c, o.nodes); err != nil {
		return t, fmt.Errorf("%w (node agent log: %s)", err, agent.log)
	}
	t.add("simulated nodes registered and Ready", "%.1f s", time.Since(began).Seconds())

	manager, err := startProcess("manager", dir, filepath.Join(o.bin, "manager"),
		"--kubeconfig="+kubeconfig, "--health-probe-bind-address=0", "--metrics-bind-address=0",
		// One /24 a node: the default /16 holds only 256 nodes.
		"--cluster-cidr=10.128.0.0/12")
	if err != nil {
		return t, err
	}
	defer manager.stop()
	before, err := manager.usage()
	if err != nil {
		return t, err
	}

	ns := "scale"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return t, err
	}
	w, err := watchPods(ctx, env, ns, o.pods)
	if err != nil {
		return t, err
	}
	start := time.Now()
	for i := 0; i < o.pods/o.replicas; i++ {
		if err := c.Create(ctx, benchReplicaSet(ns, fmt.Sprintf("rs-%02d", i), o.replicas)); err != nil {
			return t, err
		}
	}
	select {
	case <-w.allRunning:
	case <-ctx.Done():
		b, r := w.counts()
		return t, fmt.Errorf("timed out with %d of %d pods bound and %d Running (logs: %s)", b, o.pods, r, dir)
	}
	after, err := manager.usage()
	if err != nil {
		return t, err
	}
	schedRate := float64(o.pods) / w.lastBound.Sub(w.firstSeen).Seconds()
	t.add("pods created by the ReplicaSets", "%.0f pods/s", float64(o.pods)/w.lastSeen.Sub(start).Seconds())
	t.add("scheduling throughput (first pod created to last pod bound)", "%.0f pods/s", schedRate)
	t.add("every ReplicaSet pod Running, from the ReplicaSets' creation", "%.1f s", w.lastRunning.Sub(start).Seconds())
	t.add("manager CPU during the run", "%.1f s", (after.cpu - before.cpu).Seconds())
	t.add("manager peak RSS", "%d MiB", after.peakRSS>>20)

	manager.stop()
	agent.stop()
	raw, err := rawBindingRate(ctx, c, o.pods, o.workers)
	if err != nil {
		return t, err
	}
	t.add(fmt.Sprintf("apiserver raw rate: the same binding writes, %d writers, no scheduler", o.workers), "%.0f writes/s", raw)
	t.add("scheduling throughput / raw rate", "%.2f", schedRate/raw)
	return t, nil
}

// fastConfig lifts client-go's default rate limit, so that the benchmark's
// own client measures the apiserver rather than itself.
func fastConfig(env *testenv.Env) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	return cfg
}

func benchReplicaSet(ns, name string, replicas int) *skiffappsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	rs := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	rs.Spec.Replicas = ptr.To(int32(replicas))
	rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	rs.Spec.Template.Labels = labels
	rs.Spec.Template.Spec.Containers = []corev1.Container{{
		Name: "app", Image: "skiff.dev/test/echo:v1",
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
		}},
	}}
	return rs
}

// waitForReadyNodes polls until n skiff Nodes report Ready=True.
func waitForReadyNodes(ctx context.Context, c client.Client, n int) error {
	for {
		var nodes skiffcorev1.NodeList
		if err := c.List(ctx, &nodes); err != nil {
			return err
		}
		ready := 0
		for i := range nodes.Items {
			for _, cond := range nodes.Items[i].Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d nodes Ready", ready, n)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// podWatch records when the benchmark first saw each pod, saw it bound, and
// saw it Running.
type podWatch struct {
	want       int
	allRunning chan struct{}

	mu                                          sync.Mutex
	seen, bound, running                        map[types.UID]bool
	firstSeen, lastSeen, lastBound, lastRunning time.Time
}

func watchPods(ctx context.Context, env *testenv.Env, ns string, want int) (*podWatch, error) {
	w := &podWatch{want: want, allRunning: make(chan struct{}),
		seen: map[types.UID]bool{}, bound: map[types.UID]bool{}, running: map[types.UID]bool{}}
	informers, err := cache.New(fastConfig(env), cache.Options{Scheme: env.Scheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	inf, err := informers.GetInformer(ctx, &skiffcorev1.Pod{})
	if err != nil {
		return nil, err
	}
	observe := func(obj any) {
		if p, ok := obj.(*skiffcorev1.Pod); ok {
			w.observe(p, time.Now())
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the pod watch never synced")
	}
	return w, nil
}

func (w *podWatch) observe(p *skiffcorev1.Pod, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.seen[p.UID] {
		w.seen[p.UID] = true
		if w.firstSeen.IsZero() {
			w.firstSeen = now
		}
		w.lastSeen = now
	}
	if p.Spec.NodeName != "" && !w.bound[p.UID] {
		w.bound[p.UID] = true
		w.lastBound = now
	}
	if p.Status.Phase == corev1.PodRunning && podutil.IsReady(p) && !w.running[p.UID] {
		w.running[p.UID] = true
		w.lastRunning = now
		if len(w.running) == w.want {
			close(w.allRunning)
		}
	}
}

func (w *podWatch) counts() (bound, running int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bound), len(w.running)
}

// rawBindingRate creates n unbound pods, then measures how fast `workers`
// writers can apply the scheduler's binding write to them: a merge patch
// setting spec.nodeName and the termination finalizer, conditional on the
// resourceVersion. That is the apiserver's ceiling for scheduling.
func rawBindingRate(ctx context.Context, c client.Client, n, workers int) (float64, error) {
	ns := "raw"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return 0, err
	}
	pods := make([]*skiffcorev1.Pod, n)
	err := parallel(ctx, n, workers, func(i int) error {
		rs := benchReplicaSet(ns, "raw", 1)
		p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("raw-%05d", i), Labels: rs.Spec.Template.Labels}}
		p.Spec = rs.Spec.Template.Spec
		pods[i] = p
		return c.Create(ctx, p)
	})
	if err != nil {
		return 0, fmt.Errorf("creating the raw pods: %w", err)
	}
	began := time.Now()
	err = parallel(ctx, n, workers, func(i int) error {
		patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"finalizers":[%q]},"spec":{"nodeName":"raw-node-%d"}}`,
			pods[i].ResourceVersion, skiffcorev1.PodTerminationFinalizer, i%1000)
		return c.Patch(ctx, pods[i], client.RawPatch(types.MergePatchType, []byte(patch)))
	})
	if err != nil {
		return 0, fmt.Errorf("binding the raw pods: %w", err)
	}
	return float64(n) / time.Since(began).Seconds(), nil
}

// parallel runs do(0..n-1) on `workers` goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, do func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}
