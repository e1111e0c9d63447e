package localpath

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// ClaimReconciler provisions a volume for each unbound local-path claim
// once its first consumer is on a node, binds the claim to it, and
// releases deleted claims that no pod uses any more.
type ClaimReconciler struct {
	client.Client
	// APIReader reads past the cache, to confirm a claim's volume is
	// really gone before the claim is marked Lost.
	APIReader client.Reader
	Recorder  events.EventRecorder
}

// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;patch;update
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims/status,verbs=patch;update
// +kubebuilder:rbac:groups="",resources=persistentvolumes,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch

// Reconcile moves one claim a step towards Bound, or lets a deleted one go.
func (r *ClaimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var claim corev1.PersistentVolumeClaim
	if err := r.Get(ctx, req.NamespacedName, &claim); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pods skiffcorev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(claim.Namespace), client.MatchingFields{podClaimName: claim.Name}); err != nil {
		return ctrl.Result{}, err
	}

	// 1. A deleted claim goes once no pod that may still run uses it.
	if !claim.DeletionTimestamp.IsZero() {
		if inUse(pods.Items) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, removeFinalizer(ctx, r.Client, claim.DeepCopy(), claimProtectionFinalizer)
	}

	// 2. A claim with a volume only needs its status to say so.
	if claim.Spec.VolumeName != "" {
		return ctrl.Result{}, r.syncBoundStatus(ctx, &claim)
	}

	// 3. Unbound: is it ours?
	var classes storagev1.StorageClassList
	if err := r.List(ctx, &classes); err != nil {
		return ctrl.Result{}, err
	}
	class := classOf(&claim, classes.Items)
	if class == nil {
		return ctrl.Result{}, nil
	}
	if !waitsForConsumer(class) {
		r.Recorder.Eventf(&claim, nil, corev1.EventTypeWarning, "ProvisioningFailed", "Provision",
			"storage class %s binds Immediately, but a local-path volume only exists once a node is chosen: set its volumeBindingMode to WaitForFirstConsumer", class.Name)
		return ctrl.Result{}, nil
	}

	// 4. Wait for the first consumer to be on a node, and remember which.
	node := claim.Annotations[annSelectedNode]
	if node == "" {
		node = consumerNode(pods.Items)
	}
	if node == "" {
		r.Recorder.Eventf(&claim, nil, corev1.EventTypeNormal, "WaitForFirstConsumer", "Provision",
			"waiting for first consumer to be created before binding")
		return ctrl.Result{}, nil
	}
	if err := r.selectNode(ctx, &claim, node); err != nil {
		return ctrl.Result{}, err
	}

	// 5. Provision the volume, then bind the claim to it.
	pv, err := r.provision(ctx, &claim, class, node)
	if err != nil || pv == nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.bind(ctx, &claim, pv, class)
}

// selectNode records the chosen node on the claim, as upstream's
// scheduler does, so that the choice survives the pod. claim is updated
// to what the apiserver returns.
func (r *ClaimReconciler) selectNode(ctx context.Context, claim *corev1.PersistentVolumeClaim, node string) error {
	want := map[string]string{annSelectedNode: node, annStorageProvisioner: Provisioner, annBetaProvisioner: Provisioner}
	if hasAnnotations(claim.Annotations, want) {
		return nil
	}
	base := claim.DeepCopy()
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	maps.Copy(claim.Annotations, want)
	return r.Patch(ctx, claim, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// provision creates the claim's volume, or finds the one a previous pass
// created. A nil volume means it is not in the cache yet; its creation
// event brings the claim back.
func (r *ClaimReconciler) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node string) (*corev1.PersistentVolume, error) {
	pv := newVolume(claim, class, node)
	var existing corev1.PersistentVolume
	err := r.Get(ctx, client.ObjectKeyFromObject(pv), &existing)
	switch {
	case err == nil:
		if ref := existing.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
			return nil, fmt.Errorf("volume %s exists but is not for claim %s/%s (uid %s): delete it", pv.Name, claim.Namespace, claim.Name, claim.UID)
		}
		return &existing, nil
	case !apierrors.IsNotFound(err):
		return nil, err
	}

	r.Recorder.Eventf(claim, nil, corev1.EventTypeNormal, "Provisioning", "Provision",
		"External provisioner is provisioning volume for claim %q", claim.Namespace+"/"+claim.Name)
	if err := r.Create(ctx, pv); apierrors.IsAlreadyExists(err) {
		return nil, nil
	} else if err != nil {
		r.Recorder.Eventf(claim, nil, corev1.EventTypeWarning, "ProvisioningFailed", "Provision",
			"failed to provision volume with StorageClass %q: %v", class.Name, err)
		return nil, err
	}
	logf.FromContext(ctx).Info("provisioned a volume", "volume", pv.Name, "node", node)
	r.Recorder.Eventf(claim, pv, corev1.EventTypeNormal, "ProvisioningSucceeded", "Provision",
		"Successfully provisioned volume %s", pv.Name)
	return pv, nil
}

// bind points the claim at its volume, with upstream's binder
// annotations, and then writes the Bound status. The resourceVersion
// precondition keeps a claim bound meanwhile as it is. A claim created
// before any default class existed gets the class's name, as upstream's
// retroactive default class assignment does.
func (r *ClaimReconciler) bind(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, class *storagev1.StorageClass) error {
	base := claim.DeepCopy()
	claim.Spec.VolumeName = pv.Name
	if claim.Spec.StorageClassName == nil {
		claim.Spec.StorageClassName = &class.Name
	}
	maps.Copy(claim.Annotations, map[string]string{annBindCompleted: "yes", annBoundByController: "yes"})
	if err := r.Patch(ctx, claim, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	return r.writeStatus(ctx, claim, corev1.ClaimBound, pv)
}

// syncBoundStatus marks a claim that names a volume Bound once that
// volume is bound to it, or Lost once the volume is gone.
func (r *ClaimReconciler) syncBoundStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	var pv corev1.PersistentVolume
	err := r.Get(ctx, types.NamespacedName{Name: claim.Spec.VolumeName}, &pv)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, types.NamespacedName{Name: claim.Spec.VolumeName}, &pv)
		if apierrors.IsNotFound(err) {
			if claim.Status.Phase == corev1.ClaimBound {
				r.Recorder.Eventf(claim, nil, corev1.EventTypeWarning, "ClaimLost", "Bind",
					"Bound claim has lost its PersistentVolume. Data on the volume is lost!")
			}
			return r.writeStatus(ctx, claim, corev1.ClaimLost, nil)
		}
	}
	if err != nil {
		return err
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		return nil // someone else's volume: upstream's binder would wait too
	}
	return r.writeStatus(ctx, claim, corev1.ClaimBound, &pv)
}

// writeStatus sets the claim's phase, and while Bound the volume's
// capacity and access modes, unless they already are.
func (r *ClaimReconciler) writeStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, pv *corev1.PersistentVolume) error {
	base := claim.DeepCopy()
	claim.Status.Phase = phase
	if pv != nil {
		claim.Status.Capacity = pv.Spec.Capacity.DeepCopy()
		claim.Status.AccessModes = pv.Spec.AccessModes
	}
	if equalClaimStatus(&base.Status, &claim.Status) {
		return nil
	}
	return r.Status().Patch(ctx, claim, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

func equalClaimStatus(a, b *corev1.PersistentVolumeClaimStatus) bool {
	return a.Phase == b.Phase && a.Capacity.Storage().Equal(*b.Capacity.Storage()) &&
		slices.Equal(a.AccessModes, b.AccessModes)
}

func hasAnnotations(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// SetupWithManager watches claims, the pods that use them (a binding or a
// pod's end moves a claim on), volumes (their creation completes a
// binding) and storage classes (a new default class adopts waiting
// claims).
func (r *ClaimReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("localpath-claim").
		For(&corev1.PersistentVolumeClaim{}).
		Watches(&skiffcorev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podClaims),
			builder.WithPredicates(predicate.Funcs{
				UpdateFunc: func(e event.UpdateEvent) bool {
					o, n := e.ObjectOld.(*skiffcorev1.Pod), e.ObjectNew.(*skiffcorev1.Pod)
					return o.Spec.NodeName != n.Spec.NodeName || o.Status.Phase != n.Status.Phase ||
						o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero()
				},
			})).
		Watches(&corev1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(volumeClaim)).
		Watches(&storagev1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.unboundClaims)).
		Complete(r)
}

// podClaims maps a pod to the claims its volumes use.
func podClaims(_ context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, name := range claimNames(o.(*skiffcorev1.Pod)) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	return reqs
}

// volumeClaim maps a volume to the claim it is bound to.
func volumeClaim(_ context.Context, o client.Object) []reconcile.Request {
	ref := o.(*corev1.PersistentVolume).Spec.ClaimRef
	if ref == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}}}
}

// unboundClaims maps a storage class to every claim still without a
// volume.
func (r *ClaimReconciler) unboundClaims(ctx context.Context, _ client.Object) []reconcile.Request {
	var claims corev1.PersistentVolumeClaimList
	if err := r.List(ctx, &claims); err != nil {
		logf.FromContext(ctx).Error(err, "listing claims for a storage class change")
		return nil
	}
	var reqs []reconcile.Request
	for i := range claims.Items {
		if claims.Items[i].Spec.VolumeName == "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&claims.Items[i])})
		}
	}
	return reqs
}
