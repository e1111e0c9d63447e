package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

func waitFor(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, check)
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// logContains checks the container's current log for text.
func logContains(n *node, p *skiffcorev1.Pod, container, text string) error {
	b, err := os.ReadFile(n.runtime.LogPath(p, container, 0))
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), text) {
		return fmt.Errorf("log of %s/%s lacks %q: %q", p.Name, container, text, tailOf(string(b), 300))
	}
	return nil
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// gone is nil once the pod object is deleted.
func gone(p *skiffcorev1.Pod) error {
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &skiffcorev1.Pod{})
	if err == nil {
		return fmt.Errorf("pod %s still there", p.Name)
	}
	return client.IgnoreNotFound(err)
}
