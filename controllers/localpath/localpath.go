// Package localpath provisions and binds PersistentVolumeClaims to local
// directories, as rancher's local-path-provisioner and upstream's
// PersistentVolume controller do together, so that a StatefulSet's claims
// become Bound. skiff runs no kube-controller-manager, so nothing else binds
// claims.
//
// A claim of the local-path class (or of no class, when local-path is the
// default) waits for its first consumer: once a skiff Pod using it is bound
// to a node, the claim is annotated with that node, a PersistentVolume
// pvc-<claim uid> pinned to the node is created, and both are marked Bound.
// The node agent creates the directory when it starts the pod. A deleted
// claim releases its volume, which is deleted under the Delete reclaim
// policy.
//
// The controller also plays upstream's PVC and PV protection, for every
// claim and volume: it removes the finalizers the apiserver's admission
// adds once no pod uses the claim, or no claim the volume.
package localpath

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/index"
	"skiff.dev/skiff/internal/recorder"
)

// podClaimName indexes skiff Pods by the claims their volumes use.
const podClaimName = "spec.volumes.persistentVolumeClaim.claimName"

// Setup registers the claim and volume reconcilers, and the start-up step
// that creates the local-path class when it is missing.
func Setup(mgr ctrl.Manager) error {
	err := index.Register(context.Background(), mgr.GetFieldIndexer(), &skiffcorev1.Pod{}, podClaimName, func(o client.Object) []string {
		return claimNames(o.(*skiffcorev1.Pod))
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return ensureClass(ctx, mgr.GetClient())
	})); err != nil {
		return err
	}
	claims := &ClaimReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  recorder.New(mgr, "local-path-provisioner"),
	}
	if err := claims.SetupWithManager(mgr); err != nil {
		return err
	}
	volumes := &VolumeReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}
	return volumes.SetupWithManager(mgr)
}

// ensureClass creates the local-path class unless it exists, retrying
// while the apiserver is unreachable. An existing class is left as its
// admin changed it (default or not, another reclaim policy). The class is
// made here rather than shipped in config/ so that every cluster, `make
// up`'s and a test's alike, gets it with the controller that serves it.
func ensureClass(ctx context.Context, c client.Client) error {
	backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: time.Minute, Steps: 1 << 30}
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		err := c.Create(ctx, DefaultClass())
		switch {
		case err == nil:
			logf.FromContext(ctx).Info("created the default storage class", "class", ClassName)
			return true, nil
		case apierrors.IsAlreadyExists(err):
			return true, nil
		default:
			logf.FromContext(ctx).Error(err, "creating the storage class; retrying", "class", ClassName)
			return false, nil
		}
	})
	if ctx.Err() != nil {
		return nil // the manager is stopping: not a failure
	}
	return err
}
