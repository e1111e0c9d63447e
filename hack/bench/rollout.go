package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

// runRollout is issue 4's benchmark: a Deployment of o.replicas pods on
// o.nodes simulated nodes rolls to a new image with maxSurge and
// maxUnavailable 25%. It reports the rollout's time and the apiserver
// writes it took per replaced pod, counted by the apiserver itself.
func runRollout(ctx context.Context, o options) (table, error) {
	t := table{title: fmt.Sprintf("Rolling update: a %d-replica Deployment on %d simulated nodes, maxSurge 25%%, maxUnavailable 25%%", o.replicas, o.nodes)}
	b, err := newBenchCluster(ctx, o)
	if err != nil {
		return t, err
	}
	defer b.stop()
	agent, err := b.start("nodeagent", "nodeagent", "--simulate="+strconv.Itoa(o.nodes))
	if err != nil {
		return t, err
	}
	defer agent.stop()
	manager, err := b.start("manager", "manager")
	if err != nil {
		return t, err
	}
	defer manager.stop()
	if err := waitForNodes(ctx, b.client, o.nodes, hasPodCIDR); err != nil {
		return t, err
	}
	ns := "rollout"
	if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return t, err
	}
	d := benchDeployment(ns, "web", o.replicas)
	if err := b.client.Create(ctx, d); err != nil {
		return t, err
	}
	if err := waitForRollout(ctx, b.client, d, 1); err != nil {
		return t, fmt.Errorf("first rollout: %w (logs: %s)", err, b.dir)
	}

	before, err := writeCounts(ctx, b)
	if err != nil {
		return t, err
	}
	start := time.Now()
	patch := `[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"skiff.dev/test/echo:v2"}]`
	if err := b.client.Patch(ctx, d, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		return t, err
	}
	if err := waitForRollout(ctx, b.client, d, d.Generation); err != nil {
		return t, fmt.Errorf("rolling update: %w (logs: %s)", err, b.dir)
	}
	took := time.Since(start)
	after, err := writeCounts(ctx, b)
	if err != nil {
		return t, err
	}
	t.add("rollout time, from the template change to every pod updated and available", "%.1f s", took.Seconds())
	var total, heartbeats float64
	var parts []string
	for resource, n := range after.minus(before) {
		total += n
		if resource == "leases" {
			heartbeats += n
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", resource, n/float64(o.replicas)))
	}
	sort.Strings(parts)
	t.add("API writes per replaced pod (all writers)", "%.2f", total/float64(o.replicas))
	t.add("API writes per replaced pod, without node heartbeats", "%.2f", (total-heartbeats)/float64(o.replicas))
	t.add("of which, by resource", "%s", strings.Join(parts, ", "))
	return t, nil
}

func benchDeployment(ns, name string, replicas int) *skiffappsv1.Deployment {
	rs := benchReplicaSet(ns, name, replicas)
	d := &skiffappsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	d.Spec.Replicas = ptr.To(int32(replicas))
	d.Spec.Selector = rs.Spec.Selector
	d.Spec.Template = rs.Spec.Template
	return d
}

// waitForRollout polls until the Deployment has observed generation gen and
// every replica is updated and available, with no old pods left.
func waitForRollout(ctx context.Context, c client.Client, d *skiffappsv1.Deployment, gen int64) error {
	for {
		var got skiffappsv1.Deployment
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
			return err
		}
		s, want := got.Status, *got.Spec.Replicas
		if s.ObservedGeneration >= gen && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment at %d updated, %d available, %d in all, want %d", s.UpdatedReplicas, s.AvailableReplicas, s.Replicas, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writes counts the apiserver's completed mutating requests by resource
// (with its subresource, as "pods/status").
type writes map[string]float64

func (w writes) minus(before writes) writes {
	out := writes{}
	for k, v := range w {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

var requestTotal = regexp.MustCompile(`^apiserver_request_total\{(.*)\} ([0-9.e+]+)$`)
var label = regexp.MustCompile(`(\w+)="([^"]*)"`)

// writeCounts reads apiserver_request_total from the apiserver's /metrics.
func writeCounts(ctx context.Context, b *benchCluster) (writes, error) {
	cs, err := kubernetes.NewForConfig(b.env.FastConfig())
	if err != nil {
		return nil, err
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the apiserver's metrics: %w", err)
	}
	out := writes{}
	s := bufio.NewScanner(bytes.NewReader(raw))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		m := requestTotal.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			labels[l[1]] = l[2]
		}
		switch labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION":
		default:
			continue
		}
		n, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		resource := labels["resource"]
		if sub := labels["subresource"]; sub != "" {
			resource += "/" + sub
		}
		out[resource] += n
	}
	return out, s.Err()
}
