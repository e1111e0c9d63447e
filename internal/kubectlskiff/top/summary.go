package top

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/podio"
)

// summaries reads each node's /stats/summary from its agent, all at once:
// an agent measures CPU over a second when it has no earlier reading. A
// node whose agent fails has its error instead.
func summaries(ctx context.Context, hc *http.Client, nodes []*skiffcorev1.Node) (map[string]*statsv1alpha1.Summary, map[string]error) {
	var mu sync.Mutex
	got, failed := map[string]*statsv1alpha1.Summary{}, map[string]error{}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			s, err := summary(ctx, hc, n)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[n.Name] = err
				return
			}
			got[n.Name] = s
		})
	}
	wg.Wait()
	return got, failed
}

// summary reads one node's summary.
func summary(ctx context.Context, hc *http.Client, n *skiffcorev1.Node) (*statsv1alpha1.Summary, error) {
	base, err := podio.AgentEndpoint(n)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stats/summary", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the node agent of %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node %s: %w", n.Name, podio.AgentError(resp))
	}
	s := &statsv1alpha1.Summary{}
	if err := json.NewDecoder(resp.Body).Decode(s); err != nil {
		return nil, fmt.Errorf("decoding the summary of node %s: %w", n.Name, err)
	}
	return s, nil
}
