package describe

import "testing"

// TestParsePath reads the URL paths a clientset asks the view for.
func TestParsePath(t *testing.T) {
	cases := []struct {
		path string
		want request
		ok   bool
	}{
		{"/api/v1/namespaces/ns1/pods/web", request{key: "/v1/pods", namespace: "ns1", name: "web"}, true},
		{"/api/v1/namespaces/ns1/events", request{key: "/v1/events", namespace: "ns1"}, true},
		{"/api/v1/events", request{key: "/v1/events"}, true},
		{"/api/v1/nodes/n1", request{key: "/v1/nodes", name: "n1"}, true},
		{"/apis/apps/v1/namespaces/ns1/replicasets", request{key: "apps/v1/replicasets", namespace: "ns1"}, true},
		{"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", request{key: "coordination.k8s.io/v1/leases", namespace: "kube-node-lease", name: "n1"}, true},
		{"/apis/apps/v1/namespaces/ns1/deployments/web/scale", request{}, false},
		{"/version", request{}, false},
	}
	for _, c := range cases {
		got, ok := parsePath(c.path)
		if got != c.want || ok != c.ok {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
}
