package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
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

// eventReasons lists the reasons and notes of the Events recorded on a pod.
func eventReasons(p *skiffcorev1.Pod) (map[string][]string, error) {
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(p.Namespace)); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.UID == p.UID {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out, nil
}

// wantEvents waits until the pod has Events with each of reasons, and
// returns the notes of every Event by reason: one reason can have several
// Events with different notes (a probe that timed out once and then
// failed with a status code, say).
func wantEvents(t *testing.T, p *skiffcorev1.Pod, reasons ...string) map[string][]string {
	t.Helper()
	var got map[string][]string
	waitFor(t, 20*time.Second, func() (err error) {
		if got, err = eventReasons(p); err != nil {
			return err
		}
		for _, r := range reasons {
			if _, ok := got[r]; !ok {
				return fmt.Errorf("no %s Event on pod %s yet; has %v", r, p.Name, got)
			}
		}
		return nil
	})
	return got
}

// wantEventNote waits until the pod has an Event with reason whose note
// contains substr.
func wantEventNote(t *testing.T, p *skiffcorev1.Pod, reason, substr string) {
	t.Helper()
	waitFor(t, 20*time.Second, func() error {
		got, err := eventReasons(p)
		if err != nil {
			return err
		}
		for _, note := range got[reason] {
			if strings.Contains(note, substr) {
				return nil
			}
		}
		return fmt.Errorf("no %s Event on pod %s says %q; has %q", reason, p.Name, substr, got[reason])
	})
}
