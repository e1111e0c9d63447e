package statefulset

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// incarnation is one pod (one UID) as a watch saw it over its life. The
// times are the apiserver's and the node agent's, in whole seconds.
type incarnation struct {
	name    string
	image   string
	created time.Time
	// readySince is the Ready condition's transition time, when it was
	// seen True.
	readySince time.Time
	// deleting is the deletionTimestamp, once set.
	deleting time.Time
}

// step is one watch event, reduced to what the rollout checks need.
type step struct {
	name  string
	uid   types.UID
	image string
	ready bool
	// gone: being deleted, or deleted.
	gone bool
}

// timeline records a namespace's pods from a watch: every event in order,
// and every incarnation of every pod.
type timeline struct {
	mu    sync.Mutex
	steps []step
	pods  map[types.UID]*incarnation
}

func watchTimeline(t *testing.T, ns string) *timeline {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(bg(), &skiffcorev1.PodList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	tl := &timeline{pods: map[types.UID]*incarnation{}}
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*skiffcorev1.Pod); ok && ev.Type != watch.Error {
				tl.record(p, ev.Type == watch.Deleted)
			}
		}
	}()
	return tl
}

func (tl *timeline) record(p *skiffcorev1.Pod, deleted bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	ready := podutil.IsReady(p) && p.DeletionTimestamp == nil && !deleted
	tl.steps = append(tl.steps, step{name: p.Name, uid: p.UID, image: p.Spec.Containers[0].Image, ready: ready, gone: p.DeletionTimestamp != nil || deleted})
	inc := tl.pods[p.UID]
	if inc == nil {
		inc = &incarnation{name: p.Name, image: p.Spec.Containers[0].Image, created: p.CreationTimestamp.Time}
		tl.pods[p.UID] = inc
	}
	if c := podutil.Condition(&p.Status, corev1.PodReady); ready && c != nil && inc.readySince.IsZero() {
		inc.readySince = c.LastTransitionTime.Time
	}
	if p.DeletionTimestamp != nil && inc.deleting.IsZero() {
		inc.deleting = p.DeletionTimestamp.Time
	}
}

// incarnation returns the pod named name that runs image.
func (tl *timeline) incarnation(name, image string) (incarnation, error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, inc := range tl.pods {
		if inc.name == name && inc.image == image {
			return *inc, nil
		}
	}
	return incarnation{}, fmt.Errorf("no pod %s with image %s was seen", name, image)
}

// mostUnavailable replays the events and returns the largest number of the
// wanted pod names that were at once missing, going, or not ready, counted
// from the first moment when all of them were ready.
func (tl *timeline) mostUnavailable(wanted []string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	latest := map[string]step{}
	started, most := false, 0
	for _, s := range tl.steps {
		if cur, ok := latest[s.name]; !ok || cur.uid == s.uid || !s.gone {
			// A later event of an older incarnation does not hide its
			// replacement.
			latest[s.name] = s
		}
		down := 0
		for _, name := range wanted {
			if s, ok := latest[name]; !ok || s.gone || !s.ready {
				down++
			}
		}
		started = started || down == 0
		if started {
			most = max(most, down)
		}
	}
	return most
}

// order returns the position of the first event that matches, or -1.
func (tl *timeline) order(match func(step) bool) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i, s := range tl.steps {
		if match(s) {
			return i
		}
	}
	return -1
}

// createdAfterReady checks that pod was first created after lower was
// first seen ready.
func (tl *timeline) createdAfterReady(pod, lower string) error {
	c := tl.order(func(s step) bool { return s.name == pod })
	r := tl.order(func(s step) bool { return s.name == lower && s.ready })
	if c < 0 || r < 0 || c < r {
		return fmt.Errorf("%s created at event %d, %s ready at event %d: want it created after (-1: never seen)", pod, c, lower, r)
	}
	return nil
}

// deletedBeforeDeleting checks that first was marked for deletion before
// second.
func (tl *timeline) deletedBeforeDeleting(first, second string) error {
	a := tl.order(func(s step) bool { return s.name == first && s.gone })
	b := tl.order(func(s step) bool { return s.name == second && s.gone })
	if a < 0 || b < 0 || a > b {
		return fmt.Errorf("%s deleted at event %d, %s at event %d: want %s first (-1: never seen)", first, a, second, b, first)
	}
	return nil
}
