package statefulset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// claimName names an ordinal's claim from a template:
// <claim>-<set>-<ordinal>.
func claimName(set *skiffappsv1.StatefulSet, claim *corev1.PersistentVolumeClaim, ordinal int) string {
	return fmt.Sprintf("%s-%s", claim.Name, podName(set, ordinal))
}

// newClaim returns an ordinal's claim from a template, labelled with the
// set's selector so that it can be found again.
func newClaim(set *skiffappsv1.StatefulSet, template *corev1.PersistentVolumeClaim, ordinal int) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        claimName(set, template, ordinal),
			Namespace:   set.Namespace,
			Labels:      maps.Clone(template.Labels),
			Annotations: maps.Clone(template.Annotations),
		},
		Spec: *template.Spec.DeepCopy(),
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	if set.Spec.Selector != nil {
		maps.Copy(c.Labels, set.Spec.Selector.MatchLabels)
	}
	return c
}

// createClaims creates the ordinal's missing claims. A claim outlives its
// pod: one that exists is reused as it is.
func (r *Reconciler) createClaims(ctx context.Context, set *skiffappsv1.StatefulSet, ordinal int) error {
	var errs []error
	for i := range set.Spec.VolumeClaimTemplates {
		claim := newClaim(set, &set.Spec.VolumeClaimTemplates[i], ordinal)
		if set.Spec.PersistentVolumeClaimRetentionPolicy != nil &&
			set.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			claim.OwnerReferences = []metav1.OwnerReference{setOwnerRef(set)}
		}
		err := r.Create(ctx, claim)
		switch {
		case apierrors.IsAlreadyExists(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("creating claim %s: %w", claim.Name, err))
			r.Recorder.Eventf(set, claim, corev1.EventTypeWarning, "FailedCreate", "Create",
				"Create Claim %s for Pod %s in StatefulSet %s failed error: %v", claim.Name, podName(set, ordinal), set.Name, err)
		default:
			r.Recorder.Eventf(set, claim, corev1.EventTypeNormal, "SuccessfulCreate", "Create",
				"Create Claim %s Pod %s in StatefulSet %s success", claim.Name, podName(set, ordinal), set.Name)
		}
	}
	return errors.Join(errs...)
}

// setOwnerRef is the non-controller reference that lets the garbage
// collector delete a claim with its set (whenDeleted: Delete).
func setOwnerRef(set *skiffappsv1.StatefulSet) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: skiffappsv1.GroupVersion.String(), Kind: "StatefulSet", Name: set.Name, UID: set.UID,
	}
}

// podOwnerRef is the reference that lets the garbage collector delete a
// claim with its condemned pod (whenScaled: Delete).
func podOwnerRef(pod *skiffcorev1.Pod) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: skiffcorev1.GroupVersion.String(), Kind: "Pod", Name: pod.Name, UID: pod.UID,
	}
}

// wantedClaimOwners returns the references to the set and the pod that a
// claim of the ordinal should carry under the retention policy, as
// upstream: the set when whenDeleted is Delete, the pod when whenScaled is
// Delete and the ordinal is condemned: outside start..start+replicas-1
// after a scale-down or a move of spec.ordinals.start.
func wantedClaimOwners(set *skiffappsv1.StatefulSet, pod *skiffcorev1.Pod, ordinal, replicas int) (toSet, toPod bool) {
	policy := set.Spec.PersistentVolumeClaimRetentionPolicy
	if policy == nil {
		return false, false
	}
	start := startOrdinal(set)
	condemned := ordinal < start || ordinal >= start+replicas
	toSet = policy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	toPod = policy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType && condemned && pod != nil
	return toSet, toPod
}

// withClaimOwners returns refs with the set's and the pod's references
// added or removed as wanted; other owners are kept.
func withClaimOwners(refs []metav1.OwnerReference, set *skiffappsv1.StatefulSet, pod *skiffcorev1.Pod, toSet, toPod bool) []metav1.OwnerReference {
	out := slices.DeleteFunc(slices.Clone(refs), func(ref metav1.OwnerReference) bool {
		isSet := ref.Kind == "StatefulSet" && ref.APIVersion == skiffappsv1.GroupVersion.String() && ref.UID == set.UID
		isPod := ref.Kind == "Pod" && ref.APIVersion == skiffcorev1.GroupVersion.String() && ref.Name == podNameOf(pod)
		return isSet || isPod
	})
	if toSet {
		out = append(out, setOwnerRef(set))
	}
	if toPod {
		out = append(out, podOwnerRef(pod))
	}
	return out
}

func podNameOf(pod *skiffcorev1.Pod) string {
	if pod == nil {
		return "\x00"
	}
	return pod.Name
}

// syncClaimOwners patches the ownerReferences of the existing pods' claims
// to what the retention policy wants, before any of those pods is deleted.
func (r *Reconciler) syncClaimOwners(ctx context.Context, set *skiffappsv1.StatefulSet, pods map[int]*skiffcorev1.Pod, replicas int) error {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return nil
	}
	var errs []error
	for ordinal, pod := range pods {
		toSet, toPod := wantedClaimOwners(set, pod, ordinal, replicas)
		for i := range set.Spec.VolumeClaimTemplates {
			key := types.NamespacedName{Namespace: set.Namespace, Name: claimName(set, &set.Spec.VolumeClaimTemplates[i], ordinal)}
			if err := r.syncClaimOwner(ctx, key, set, pod, toSet, toPod); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Reconciler) syncClaimOwner(ctx context.Context, key types.NamespacedName, set *skiffappsv1.StatefulSet, pod *skiffcorev1.Pod, toSet, toPod bool) error {
	var claim corev1.PersistentVolumeClaim
	if err := r.Get(ctx, key, &claim); err != nil {
		return client.IgnoreNotFound(err)
	}
	want := withClaimOwners(claim.OwnerReferences, set, pod, toSet, toPod)
	if sameRefs(claim.OwnerReferences, want) {
		return nil
	}
	patched := claim.DeepCopy()
	patched.OwnerReferences = want
	if err := r.Patch(ctx, patched, client.MergeFromWithOptions(&claim, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("updating the owners of claim %s: %w", key.Name, err)
	}
	return nil
}

// sameRefs compares reference lists by the owners' UIDs, in any order.
func sameRefs(a, b []metav1.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	uids := map[types.UID]bool{}
	for _, ref := range a {
		uids[ref.UID] = true
	}
	for _, ref := range b {
		if !uids[ref.UID] {
			return false
		}
	}
	return true
}
