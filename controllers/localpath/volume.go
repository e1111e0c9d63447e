package localpath

import (
	"cmp"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// The annotations upstream's PV controller and external provisioners
// write on claims and volumes, so that kubectl and users read the same
// story.
const (
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annBetaProvisioner    = "volume.beta.kubernetes.io/storage-provisioner"
	annBindCompleted      = "pv.kubernetes.io/bind-completed"
	annBoundByController  = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy      = "pv.kubernetes.io/provisioned-by"
)

// NodeRoot is where the node agent keeps claim directories with its
// default --root-dir (/var/lib/skiff/nodeagent). The agent finds a claim's
// directory by namespace and name, not from the PersistentVolume, so the
// path written in the volume is for people reading it.
const NodeRoot = "/var/lib/skiff/nodeagent/local-path"

// volumeName is the provisioned volume's name, as upstream's provisioners
// derive it from the claim's UID: a repeated pass cannot create two.
func volumeName(claim *corev1.PersistentVolumeClaim) string {
	return "pvc-" + string(claim.UID)
}

// newVolume returns the PersistentVolume that backs the claim with a
// directory on node: the claim's requested size and access modes, bound
// ahead to the claim (claimRef), and pinned to the node, since the data
// lives nowhere else.
func newVolume(claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        volumeName(claim),
			Annotations: map[string]string{annProvisionedBy: Provisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes: slices.Clone(claim.Spec.AccessModes),
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				Local: &corev1.LocalVolumeSource{Path: path.Join(NodeRoot, claim.Namespace, claim.Name)},
			},
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
				ResourceVersion: claim.ResourceVersion,
			},
			PersistentVolumeReclaimPolicy: ptr.Deref(class.ReclaimPolicy, corev1.PersistentVolumeReclaimDelete),
			StorageClassName:              class.Name,
			MountOptions:                  slices.Clone(class.MountOptions),
			VolumeMode:                    claim.Spec.VolumeMode,
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
				}}}},
			}},
		},
	}
}

// claimNames lists the claims the pod's volumes use.
func claimNames(pod *skiffcorev1.Pod) []string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != "" {
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		}
	}
	return names
}

// consumerNode returns the node of the first consumer, from the pods
// that use the claim: the oldest live pod bound to a node (then the name
// decides), or "" while none is.
func consumerNode(pods []skiffcorev1.Pod) string {
	var first *skiffcorev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" || !podutil.IsActive(p) {
			continue
		}
		if first == nil || older(p, first) {
			first = p
		}
	}
	if first == nil {
		return ""
	}
	return first.Spec.NodeName
}

func older(a, b *skiffcorev1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return cmp.Less(a.Name, b.Name)
}
