package nodeagent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// podReconciler runs the pods bound to the hosted nodes and reports their
// status. One reconciler serves every node of the host: it dispatches each
// pod to its node's agent by spec.nodeName.
type podReconciler struct {
	host *Host
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch

// Reconcile brings one pod's containers in line with its spec:
//  1. a pod gone from the API is stopped and forgotten;
//  2. a pod being deleted is stopped, then its termination finalizer is
//     removed so that the apiserver lets the object go;
//  3. a finished pod is stopped and forgotten, its status kept;
//  4. otherwise the pod gets its finalizer, the runtime syncs it, and the
//     status computed from what runs is written, once, if it changed.
func (r *podReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &skiffcorev1.Pod{}
	if err := r.host.client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.forget(ctx, req.NamespacedName, nil)
		}
		return ctrl.Result{}, err
	}
	a := r.host.agent(pod.Spec.NodeName)
	if a == nil || a.stopped() {
		return ctrl.Result{}, nil
	}
	switch {
	case podutil.IsTerminating(pod):
		return ctrl.Result{}, r.terminate(ctx, a, pod)
	case podutil.IsTerminal(pod):
		return ctrl.Result{}, r.stopFinished(ctx, a, pod)
	}
	return r.sync(ctx, a, pod)
}

// sync runs the pod and writes its status.
func (r *podReconciler) sync(ctx context.Context, a *agent, pod *skiffcorev1.Pod) (ctrl.Result, error) {
	r.host.starts.seen(pod.UID, r.host.clock.Now())
	if !controllerutil.ContainsFinalizer(pod, skiffcorev1.PodTerminationFinalizer) {
		// A pod created with spec.nodeName set skipped the scheduler,
		// which adds the finalizer in its binding write.
		patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(pod, skiffcorev1.PodTerminationFinalizer)
		if err := r.host.client.Patch(ctx, pod, patch); err != nil {
			return ignoreConflict(err)
		}
	}
	node := &skiffcorev1.Node{}
	if err := r.host.client.Get(ctx, types.NamespacedName{Name: a.cfg.Name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			// Not registered yet: pods wait for their node, as upstream.
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if err := a.runtime.UpdatePodCIDR(node.Spec.PodCIDR); err != nil {
		return ctrl.Result{}, fmt.Errorf("node %s: %w", node.Name, err)
	}

	r.remember(pod, a)
	rs, syncErr := a.runtime.SyncPod(ctx, pod)
	now := r.host.clock.Now()
	status := podStatus(pod, rs, a.cfg.InternalIP, now)
	if syncErr != nil {
		// Say why in the pod's status, as upstream's CreateContainerError
		// does, and try again with back-off.
		syncErr = fmt.Errorf("running pod %s/%s: %w", pod.Namespace, pod.Name, syncErr)
		markNotCreated(status.ContainerStatuses, syncErr)
	}
	var result ctrl.Result
	if !rs.NextChange.IsZero() {
		result.RequeueAfter = max(rs.NextChange.Sub(now), 0) + 10*time.Millisecond
	}
	if equality.Semantic.DeepEqual(pod.Status, status) {
		return result, syncErr
	}
	r.host.starts.synced(pod, &status, now)
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pod.Status = status
	if err := r.host.client.Status().Patch(ctx, pod, patch); err != nil {
		if _, err := ignoreConflict(err); err != nil {
			return ctrl.Result{}, err
		}
	}
	return result, syncErr
}

// markNotCreated gives the containers that the runtime has not created the
// reason it could not.
func markNotCreated(statuses []corev1.ContainerStatus, err error) {
	for i := range statuses {
		if w := statuses[i].State.Waiting; w != nil && w.Reason == reasonContainerCreating {
			w.Reason, w.Message = reasonCreateContainerError, err.Error()
		}
	}
}

// terminate stops a pod being deleted and then releases its object.
func (r *podReconciler) terminate(ctx context.Context, a *agent, pod *skiffcorev1.Pod) error {
	// The apiserver records no grace period for a custom resource (it
	// deletes at once, or waits for finalizers), so the pod's own is the
	// rule; a shorter one asked for at deletion wins, as upstream.
	grace := 30 * time.Second
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if g := pod.DeletionGracePeriodSeconds; g != nil && *g > 0 && time.Duration(*g)*time.Second < grace {
		grace = time.Duration(*g) * time.Second
	}
	if err := a.runtime.KillPod(ctx, pod, grace); err != nil {
		return fmt.Errorf("stopping pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if err := r.forget(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, pod); err != nil {
		return err
	}
	if !controllerutil.ContainsFinalizer(pod, skiffcorev1.PodTerminationFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(pod.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(pod, skiffcorev1.PodTerminationFinalizer)
	if err := r.host.client.Patch(ctx, pod, patch); err != nil && !apierrors.IsNotFound(err) {
		_, err = ignoreConflict(err)
		return err
	}
	return nil
}

// stopFinished stops what is left of a finished pod (its sidecars) and
// releases its network, but keeps its containers, and so their logs and
// exits, until the pod is deleted, as the kubelet does.
func (r *podReconciler) stopFinished(ctx context.Context, a *agent, pod *skiffcorev1.Pod) error {
	r.remember(pod, a)
	r.host.starts.forget(pod.UID)
	if err := a.runtime.KillPod(ctx, pod, 0); err != nil {
		return fmt.Errorf("stopping finished pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// remember records that a pod was handed to a node's runtime.
func (r *podReconciler) remember(pod *skiffcorev1.Pod, a *agent) {
	r.host.mu.Lock()
	defer r.host.mu.Unlock()
	r.host.running[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}] = runningPod{uid: pod.UID, node: a.cfg.Name}
}

// forget stops a pod that no longer runs (gone from the API, finished, or
// being deleted) and frees what it held in its runtime. pod is nil when the
// object is gone.
func (r *podReconciler) forget(ctx context.Context, key types.NamespacedName, pod *skiffcorev1.Pod) error {
	r.host.mu.Lock()
	rp, ok := r.host.running[key]
	delete(r.host.running, key)
	r.host.mu.Unlock()
	if !ok {
		return nil
	}
	r.host.starts.forget(rp.uid)
	a := r.host.agent(rp.node)
	if a == nil {
		return nil
	}
	// The runtime's pod may be an earlier one of the same name; stop that
	// one. Killing needs only the UID, and the grace period is moot for a
	// pod that no longer runs.
	stale := &skiffcorev1.Pod{}
	stale.UID, stale.Namespace, stale.Name = rp.uid, key.Namespace, key.Name
	if err := a.runtime.KillPod(ctx, stale, 0); err != nil {
		return err
	}
	return a.runtime.RemovePod(ctx, rp.uid)
}

// ignoreConflict treats a conflict as a stale cache: the newer object's
// event brings the pod back, so there is nothing to retry.
func ignoreConflict(err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}
