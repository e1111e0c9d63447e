package job

import (
	"context"
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
)

// TestAdoptionByManualSelector gives a Job with manualSelector an orphan
// pod its selector matches: the Job adopts it (controller reference and
// tracking finalizer) and counts it active instead of creating a pod; an
// orphan the selector does not match is left alone. Relabelled out of the
// selector, the pod is released (reference and finalizer removed) and the
// Job creates a replacement.
func TestAdoptionByManualSelector(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	orphan := createOrphan(t, ns, "orphan", map[string]string{"app": "adopt"})
	stranger := createOrphan(t, ns, "stranger", map[string]string{"app": "other"})
	job := createJob(t, ns, "adopt", func(s *batchv1.JobSpec) {
		s.ManualSelector = ptr.To(true)
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "adopt"}}
	})
	job = getJob(t, job)

	testenv.Eventually(t, timeout, func() error {
		p := getPod(t, orphan)
		if !metav1.IsControlledBy(p, job) || !hasTrackingFinalizer(p) {
			return fmt.Errorf("orphan not adopted: owners %v, finalizers %v", p.OwnerReferences, p.Finalizers)
		}
		if pods := runningMatching(t, ns, "adopt"); len(pods) != 1 {
			return fmt.Errorf("%d pods run for parallelism 1, want the adopted one alone", len(pods))
		}
		if got := getJob(t, job); got.Status.Active != 1 {
			return fmt.Errorf("status.active = %d, want 1", got.Status.Active)
		}
		return nil
	})
	if p := getPod(t, stranger); len(p.OwnerReferences) != 0 || hasTrackingFinalizer(p) {
		t.Errorf("a pod the selector does not match was taken: owners %v, finalizers %v", p.OwnerReferences, p.Finalizers)
	}

	p := getPod(t, orphan)
	p.Labels["app"] = "gone"
	if err := env.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		p := getPod(t, orphan)
		if len(p.OwnerReferences) != 0 || hasTrackingFinalizer(p) {
			return fmt.Errorf("relabelled pod not released: owners %v, finalizers %v", p.OwnerReferences, p.Finalizers)
		}
		pods := runningMatching(t, ns, "adopt")
		if len(pods) != 1 || !metav1.IsControlledBy(&pods[0], job) {
			return fmt.Errorf("%d matching pods run, want a replacement of the released one", len(pods))
		}
		return nil
	})
}

// TestDefaultSelectorReadopts orphans a Job's pod (its owner reference
// removed, its labels kept): without manualSelector the Job's generated
// selector, controller-uid=<uid>, still matches it, so the Job adopts it
// back rather than start another.
func TestDefaultSelectorReadopts(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	job := createJob(t, ns, "readopt", nil)
	job = getJob(t, job)
	first := waitRunning(t, job, "")
	p := first.DeepCopy()
	p.OwnerReferences = nil
	if err := env.Client.Update(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		p := getPod(t, &first)
		if !metav1.IsControlledBy(p, job) {
			return fmt.Errorf("orphaned pod not adopted back: owners %v", p.OwnerReferences)
		}
		if n := len(running(podsOf(t, job))); n != 1 {
			return fmt.Errorf("%d pods run, want the re-adopted one alone", n)
		}
		return nil
	})
}

// TestDeletedJobReleasesAdoptedPod deletes a Job that adopted a pod: the
// pod lacks the Job's job-name label, yet its tracking finalizer is
// removed, or the pod could never be deleted. (No garbage collector runs
// here: the pod outlives the Job, as it does until the collector comes.)
func TestDeletedJobReleasesAdoptedPod(t *testing.T) {
	startController(t)
	ns := newNamespace(t)
	orphan := createOrphan(t, ns, "orphan", map[string]string{"app": "gone-job"})
	job := createJob(t, ns, "gone-job", func(s *batchv1.JobSpec) {
		s.ManualSelector = ptr.To(true)
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "gone-job"}}
	})
	testenv.Eventually(t, timeout, func() error {
		if p := getPod(t, orphan); !hasTrackingFinalizer(p) {
			return fmt.Errorf("orphan not adopted: finalizers %v", p.Finalizers)
		}
		return nil
	})
	if err := env.Client.Delete(context.Background(), job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, timeout, func() error {
		if p := getPod(t, orphan); hasTrackingFinalizer(p) {
			return fmt.Errorf("the deleted job's pod still has the tracking finalizer")
		}
		return nil
	})
}

// createOrphan creates a pod that no controller owns.
func createOrphan(t *testing.T, ns, name string, labels map[string]string) *skiffcorev1.Pod {
	t.Helper()
	p := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Containers = []corev1.Container{{Name: "main", Image: "busybox"}}
	if err := env.Client.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func getPod(t *testing.T, p *skiffcorev1.Pod) *skiffcorev1.Pod {
	t.Helper()
	return fetch(t, p, &skiffcorev1.Pod{})
}

// runningMatching lists the running pods labelled app=app, whoever owns
// them.
func runningMatching(t *testing.T, ns, app string) []skiffcorev1.Pod {
	t.Helper()
	var list skiffcorev1.PodList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		t.Fatal(err)
	}
	return running(list.Items)
}
