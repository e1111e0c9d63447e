package localpath

import (
	"context"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// The protection finalizers the apiserver's StorageObjectInUseProtection
// admission puts on every claim and volume. Upstream's kube-controller-
// manager removes them; skiff runs none, so this controller does.
const (
	claimProtectionFinalizer  = "kubernetes.io/pvc-protection"
	volumeProtectionFinalizer = "kubernetes.io/pv-protection"
)

// inUse reports whether a pod that may still run uses the claim, which
// keeps a deleted claim (and its data) until the pod is done, as upstream's
// PVC protection. A terminating pod still runs until its agent stops it.
func inUse(pods []skiffcorev1.Pod) bool {
	return slices.ContainsFunc(pods, func(p skiffcorev1.Pod) bool { return !podutil.IsTerminal(&p) })
}

// removeFinalizer drops one finalizer from obj, leaving any other; the
// resourceVersion precondition keeps a finalizer added meanwhile.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	base := obj.DeepCopyObject().(client.Object)
	controllerutil.RemoveFinalizer(obj, finalizer)
	return client.IgnoreNotFound(c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}
