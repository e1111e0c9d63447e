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
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
	"skiff.dev/skiff/internal/testenv"
)

// runScale is issue 3's benchmark, on one cluster of simulated nodes:
//
//  1. end to end: pods created at once through ReplicaSets, with every
//     controller in one manager, until every pod is Running; the manager's
//     CPU and peak memory;
//  2. the apiserver's raw rate: the same number of pending pods, bound by
//     the benchmark itself with the scheduler's own write;
//  3. the scheduler alone (--controllers=scheduler) binding as many pending
//     pods, under the same conditions as 2, so that the ratio of 3 to 2
//     says how close the scheduler comes to the apiserver's limit.
func runScale(ctx context.Context, o options) (table, error) {
	t := table{title: fmt.Sprintf("Scheduling: %d simulated nodes, %d pods through %d ReplicaSets", o.nodes, o.pods, o.pods/o.replicas)}
	b, err := newBenchCluster(ctx, o)
	if err != nil {
		return t, err
	}
	defer b.stop()
	began := time.Now()
	agent, err := b.start("nodeagent", "nodeagent", "--simulate="+strconv.Itoa(o.nodes))
	if err != nil {
		return t, err
	}
	defer agent.stop()
	if err := waitForNodes(ctx, b.client, o.nodes, nodeReady); err != nil {
		return t, fmt.Errorf("%w (node agent log: %s)", err, agent.log)
	}
	t.add("simulated nodes registered and Ready", "%.1f s", time.Since(began).Seconds())

	if err := b.endToEnd(ctx, o, &t); err != nil {
		return t, err
	}
	rest, err := b.start("manager-no-scheduler", "manager", "--controllers=*,-scheduler")
	if err != nil {
		return t, err
	}
	defer rest.stop()
	raw, err := b.rawBindingRate(ctx, o)
	if err != nil {
		return t, err
	}
	t.add(fmt.Sprintf("apiserver raw rate: the binding write for %d pending pods, %d writers", o.pods, o.workers), "%.0f writes/s", raw)
	sched, err := b.schedulerAlone(ctx, o, &t)
	if err != nil {
		return t, err
	}
	t.add("scheduler alone: binding the same number of pending pods", "%.0f pods/s", sched)
	t.add("scheduler / raw rate", "%.2f", sched/raw)
	return t, nil
}

// benchCluster is the control plane the scenario runs on, with a kubeconfig
// for the processes it starts.
type benchCluster struct {
	env        *testenv.Env
	client     client.Client
	dir        string
	kubeconfig string
	bin        string
}

func newBenchCluster(ctx context.Context, o options) (*benchCluster, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	b := &benchCluster{env: env, bin: o.bin}
	if b.dir, err = os.MkdirTemp("", "skiff-bench-"); err == nil {
		b.kubeconfig, err = env.WriteAdminKubeconfig(b.dir)
	}
	if err == nil {
		b.client, err = client.New(env.FastConfig(), client.Options{Scheme: env.Scheme})
	}
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return b, nil
}

func (b *benchCluster) stop() { _ = b.env.Stop() }

// start runs one of skiff's binaries against the cluster, endpoints off.
func (b *benchCluster) start(name, binary string, args ...string) (*process, error) {
	args = append([]string{"--kubeconfig=" + b.kubeconfig, "--health-probe-bind-address=0", "--metrics-bind-address=0"}, args...)
	if binary == "manager" {
		// One /24 a node: the default /16 holds only 256 nodes.
		args = append(args, "--cluster-cidr=10.128.0.0/12")
	}
	return startProcess(name, b.dir, filepath.Join(b.bin, binary), args...)
}

// endToEnd creates the ReplicaSets with every controller running and waits
// until all their pods are Running.
func (b *benchCluster) endToEnd(ctx context.Context, o options, t *table) error {
	manager, err := b.start("manager", "manager")
	if err != nil {
		return err
	}
	defer manager.stop()
	// Node IPAM's first allocations are a start-up cost, not the burst's.
	if err := waitForNodes(ctx, b.client, o.nodes, hasPodCIDR); err != nil {
		return fmt.Errorf("%w (manager log: %s)", err, manager.log)
	}
	before, err := manager.usage()
	if err != nil {
		return err
	}
	start := time.Now()
	w, err := b.createReplicaSets(ctx, "scale", o)
	if err != nil {
		return err
	}
	if err := w.wait(ctx, w.allRunning, "Running"); err != nil {
		return fmt.Errorf("%w (logs: %s)", err, b.dir)
	}
	after, err := manager.usage()
	if err != nil {
		return err
	}
	t.add("end to end: pods created by the ReplicaSets", "%.0f pods/s", float64(o.pods)/w.lastSeen.Sub(start).Seconds())
	t.add("end to end: scheduling throughput (first pod created to last bound)", "%.0f pods/s", float64(o.pods)/w.lastBound.Sub(w.firstSeen).Seconds())
	t.add("end to end: every ReplicaSet pod Running, from the ReplicaSets' creation", "%.1f s", w.lastRunning.Sub(start).Seconds())
	t.add("end to end: manager CPU", "%.1f s", (after.cpu - before.cpu).Seconds())
	t.add("end to end: manager peak RSS", "%d MiB", after.peakRSS>>20)
	return nil
}

// createReplicaSets creates o.pods pods through ReplicaSets in a new
// namespace and returns the watch on them.
func (b *benchCluster) createReplicaSets(ctx context.Context, ns string, o options) (*podWatch, error) {
	if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, err
	}
	w, err := watchPods(ctx, b.env, ns, o.pods)
	if err != nil {
		return nil, err
	}
	for i := 0; i < o.pods/o.replicas; i++ {
		if err := b.client.Create(ctx, benchReplicaSet(ns, fmt.Sprintf("rs-%02d", i), o.replicas)); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// pendingPods creates o.pods pods through ReplicaSets while no scheduler
// runs, and returns them once all exist.
func (b *benchCluster) pendingPods(ctx context.Context, ns string, o options) (*podWatch, []*skiffcorev1.Pod, error) {
	w, err := b.createReplicaSets(ctx, ns, o)
	if err != nil {
		return nil, nil, err
	}
	if err := w.wait(ctx, w.allSeen, "created"); err != nil {
		return nil, nil, err
	}
	var list skiffcorev1.PodList
	if err := b.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, nil, err
	}
	pods := make([]*skiffcorev1.Pod, 0, len(list.Items))
	for i := range list.Items {
		if list.Items[i].Spec.NodeName == "" {
			pods = append(pods, &list.Items[i])
		}
	}
	if len(pods) != o.pods {
		return nil, nil, fmt.Errorf("%d of %d pods in %s are pending: is a scheduler running?", len(pods), o.pods, ns)
	}
	return w, pods, nil
}

// rawBindingRate measures how fast o.workers writers apply the scheduler's
// binding write to pending pods: a merge patch setting spec.nodeName and
// the termination finalizer, conditional on the resourceVersion. The nodes
// are real, so their agents start the pods as they would after a binding.
func (b *benchCluster) rawBindingRate(ctx context.Context, o options) (float64, error) {
	w, pods, err := b.pendingPods(ctx, "raw", o)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	err = parallel(ctx, len(pods), o.workers, func(i int) error {
		patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"finalizers":[%q]},"spec":{"nodeName":"sim-%04d"}}`,
			pods[i].ResourceVersion, skiffcorev1.PodTerminationFinalizer, i%o.nodes)
		return b.client.Patch(ctx, pods[i], client.RawPatch(types.MergePatchType, []byte(patch)))
	})
	if err != nil {
		return 0, fmt.Errorf("binding the pending pods: %w", err)
	}
	rate := float64(len(pods)) / time.Since(began).Seconds()
	// Let the agents finish starting them, so that the next phase starts
	// from the same quiet cluster.
	return rate, w.wait(ctx, w.allRunning, "Running")
}

// schedulerAlone starts a manager running only the scheduler on as many
// pending pods, and returns its binding rate.
func (b *benchCluster) schedulerAlone(ctx context.Context, o options, t *table) (float64, error) {
	w, _, err := b.pendingPods(ctx, "sched", o)
	if err != nil {
		return 0, err
	}
	scheduler, err := b.start("scheduler", "manager", "--controllers=scheduler")
	if err != nil {
		return 0, err
	}
	defer scheduler.stop()
	if err := w.wait(ctx, w.allBound, "bound"); err != nil {
		return 0, fmt.Errorf("%w (scheduler log: %s)", err, scheduler.log)
	}
	u, err := scheduler.usage()
	if err != nil {
		return 0, err
	}
	t.add("scheduler alone: CPU for the whole run, start-up included", "%.1f s", u.cpu.Seconds())
	return float64(o.pods) / w.lastBound.Sub(w.firstBound).Seconds(), nil
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

// waitForNodes polls until n skiff Nodes satisfy ok.
func waitForNodes(ctx context.Context, c client.Client, n int, ok func(*skiffcorev1.Node) bool) error {
	for {
		var nodes skiffcorev1.NodeList
		if err := c.List(ctx, &nodes); err != nil {
			return err
		}
		got := 0
		for i := range nodes.Items {
			if ok(&nodes.Items[i]) {
				got++
			}
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d nodes are ready for the benchmark", got, n)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func nodeReady(n *skiffcorev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasPodCIDR(n *skiffcorev1.Node) bool { return n.Spec.PodCIDR != "" }

// podWatch records when the benchmark first saw each pod, saw it bound, and
// saw it Running.
type podWatch struct {
	want                          int
	allSeen, allBound, allRunning chan struct{}

	mu                                                      sync.Mutex
	seen, bound, running                                    map[types.UID]bool
	firstSeen, lastSeen, firstBound, lastBound, lastRunning time.Time
}

func watchPods(ctx context.Context, env *testenv.Env, ns string, want int) (*podWatch, error) {
	w := &podWatch{want: want, allSeen: make(chan struct{}), allBound: make(chan struct{}), allRunning: make(chan struct{}),
		seen: map[types.UID]bool{}, bound: map[types.UID]bool{}, running: map[types.UID]bool{}}
	informers, err := cache.New(env.FastConfig(), cache.Options{Scheme: env.Scheme,
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
	if w.record(w.seen, p, w.allSeen) {
		if w.firstSeen.IsZero() {
			w.firstSeen = now
		}
		w.lastSeen = now
	}
	if p.Spec.NodeName != "" && w.record(w.bound, p, w.allBound) {
		if w.firstBound.IsZero() {
			w.firstBound = now
		}
		w.lastBound = now
	}
	if p.Status.Phase == corev1.PodRunning && podutil.IsReady(p) && w.record(w.running, p, w.allRunning) {
		w.lastRunning = now
	}
}

// record notes the pod in one of the sets the first time, and closes done
// when the set is complete. It reports whether the pod was new there.
func (w *podWatch) record(set map[types.UID]bool, p *skiffcorev1.Pod, done chan struct{}) bool {
	if set[p.UID] {
		return false
	}
	set[p.UID] = true
	if len(set) == w.want {
		close(done)
	}
	return true
}

// wait blocks until done is closed, or fails with the counts so far.
func (w *podWatch) wait(ctx context.Context, done chan struct{}, what string) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.mu.Lock()
		defer w.mu.Unlock()
		return fmt.Errorf("timed out waiting for %d pods to be %s: %d created, %d bound, %d Running",
			w.want, what, len(w.seen), len(w.bound), len(w.running))
	}
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
