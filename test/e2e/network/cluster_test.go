package network

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/internal/uptest"
)

// clusterConfig is the cluster's private names and ranges, apart from a
// user's `make up` (skiffnet0, 10.250.0.0/24, 10.244.0.0/16, 10.96.0.0/16)
// and from hack/up's own test (skupe2e0, 10.249.0.0/16, 10.97.0.0/16):
// nodes skne2e-1..3 on the bridge skne2e0, pods on skne2ecni0.
var clusterConfig = uptest.ClusterConfig{
	Nodes:       3,
	Prefix:      "skne2e",
	NodeNetwork: "10.251.0.0/24",
	ClusterCIDR: "10.248.0.0/16",
	ServiceCIDR: "10.98.0.0/16",
	AgentPort:   29082,
	Samples:     "",
	WorkPrefix:  "skiff-e2e-network-",
}

// cluster is the package's running multi-node skiff, with a test
// environment on its admin client for namespaces.
type cluster struct {
	*uptest.Cluster
	env *testenv.Env
}

// startCluster starts the package's three-node cluster and waits until
// every Node is Ready.
func startCluster() (*cluster, error) {
	uc, err := uptest.StartCluster(clusterConfig)
	if err != nil {
		return nil, err
	}
	return &cluster{Cluster: uc, env: &testenv.Env{Client: uc.Client, Scheme: uc.Client.Scheme()}}, nil
}

// execIn runs a command in the first container of a pod, through the
// containerd of its node, as `kubectl exec` would, and returns its
// standard output; the error holds its standard error.
func (c *cluster) execIn(t *testing.T, pod *skiffcorev1.Pod, cmd ...string) (string, error) {
	t.Helper()
	var current skiffcorev1.Pod
	if err := c.Client.Get(context.Background(), client.ObjectKeyFromObject(pod), &current); err != nil {
		return "", err
	}
	if len(current.Status.ContainerStatuses) == 0 || current.Status.ContainerStatuses[0].ContainerID == "" {
		return "", fmt.Errorf("pod %s has no container yet", pod.Name)
	}
	id, ok := strings.CutPrefix(current.Status.ContainerStatuses[0].ContainerID, "containerd://")
	if !ok {
		return "", fmt.Errorf("pod %s: container %q is not containerd's", pod.Name, current.Status.ContainerStatuses[0].ContainerID)
	}
	a, err := c.Agent(current.Spec.NodeName)
	if err != nil {
		return "", err
	}
	address, namespace := uptest.FlagValue(a.Args, "containerd-address"), uptest.FlagValue(a.Args, "containerd-namespace")
	if namespace == "" {
		namespace = "skiff"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctr := exec.CommandContext(ctx, "ctr", append([]string{"-a", address, "-n", namespace, "task", "exec", "--exec-id", "e2e-" + randomSuffix(), id}, cmd...)...)
	var stdout, stderr bytes.Buffer
	ctr.Stdout, ctr.Stderr = &stdout, &stderr
	if err := ctr.Run(); err != nil {
		return stdout.String(), fmt.Errorf("exec %q in pod %s: %w: %s%s", cmd, pod.Name, err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
