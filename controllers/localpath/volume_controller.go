package localpath

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// VolumeReconciler keeps a provisioned volume's phase in step with its
// claim (Bound, then Released once the claim is gone), deletes released
// volumes under the Delete reclaim policy, and lets deleted volumes go
// once no claim is bound to them.
type VolumeReconciler struct {
	client.Client
	// APIReader reads past the cache, to confirm a claim is really gone
	// before its volume is released: a release cannot be undone.
	APIReader client.Reader
}

// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;list;watch;patch;update;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumes/status,verbs=patch;update
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch

// Reconcile moves one volume along Bound, Released, deleted.
func (r *VolumeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var pv corev1.PersistentVolume
	if err := r.Get(ctx, req.NamespacedName, &pv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	// 1. A deleted volume goes once no claim is bound to it, as upstream's
	// PV protection. This holds for every volume: nothing else would.
	if !pv.DeletionTimestamp.IsZero() {
		if pv.Status.Phase == corev1.VolumeBound {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, removeFinalizer(ctx, r.Client, pv.DeepCopy(), volumeProtectionFinalizer)
	}

	// 2. Binding and reclaiming are for the volumes this provisioner made.
	if pv.Annotations[annProvisionedBy] != Provisioner || pv.Spec.ClaimRef == nil {
		return ctrl.Result{}, nil
	}
	state, err := r.findClaim(ctx, &pv)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch state {
	case claimBinding:
		return ctrl.Result{}, nil
	case claimBound:
		return ctrl.Result{}, r.setPhase(ctx, &pv, corev1.VolumeBound)
	}

	// 3. The claim is gone: release the volume, and delete it under the
	// Delete policy (the node agent keeps the directory until then).
	if err := r.setPhase(ctx, &pv, corev1.VolumeReleased); err != nil {
		return ctrl.Result{}, err
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		return ctrl.Result{}, nil
	}
	logf.FromContext(ctx).Info("deleting a released volume", "volume", pv.Name, "claim", pv.Spec.ClaimRef.Namespace+"/"+pv.Spec.ClaimRef.Name)
	return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, &pv, client.Preconditions{UID: &pv.UID}))
}

// claimState is where a volume's claim stands.
type claimState int

const (
	// claimBinding: the claim exists but does not name the volume yet.
	claimBinding claimState = iota
	claimBound
	// claimGone: the claim, by UID, no longer exists.
	claimGone
)

// findClaim finds the volume's claim, asking the apiserver itself before
// calling it gone.
func (r *VolumeReconciler) findClaim(ctx context.Context, pv *corev1.PersistentVolume) (claimState, error) {
	ref := pv.Spec.ClaimRef
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	var claim corev1.PersistentVolumeClaim
	err := r.Get(ctx, key, &claim)
	if err == nil && claim.UID == ref.UID {
		if claim.Spec.VolumeName == pv.Name {
			return claimBound, nil
		}
		return claimBinding, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	if err := r.APIReader.Get(ctx, key, &claim); err == nil && claim.UID == ref.UID {
		return claimBinding, nil // the cache is behind; its event will come
	} else if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	return claimGone, nil
}

// setPhase writes the volume's phase unless it already is.
func (r *VolumeReconciler) setPhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	if pv.Status.Phase == phase {
		return nil
	}
	base := pv.DeepCopy()
	pv.Status.Phase = phase
	return r.Status().Patch(ctx, pv, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// SetupWithManager watches volumes, and claims, whose binding or
// deletion moves their volume on.
func (r *VolumeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("localpath-volume").
		For(&corev1.PersistentVolume{}).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(claimVolumes)).
		Complete(r)
}

// claimVolumes maps a claim to the volume it names and to the one this
// provisioner would have made for it, so that a claim deleted between
// provisioning and binding still releases its volume.
func claimVolumes(_ context.Context, o client.Object) []reconcile.Request {
	claim := o.(*corev1.PersistentVolumeClaim)
	reqs := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: volumeName(claim)}}}
	if claim.Spec.VolumeName != "" && claim.Spec.VolumeName != volumeName(claim) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: claim.Spec.VolumeName}})
	}
	return reqs
}
