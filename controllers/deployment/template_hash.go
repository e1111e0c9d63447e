package deployment

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// PodTemplateHashLabel tells the ReplicaSets of one Deployment apart: it is
// added to each ReplicaSet's selector, template and name, so that their pod
// sets never overlap.
const PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

// RevisionAnnotation numbers a Deployment's ReplicaSets in the order their
// templates were rolled out, as upstream.
const RevisionAnnotation = "deployment.kubernetes.io/revision"

// templateHash is a short, stable hash of a pod template (without its hash
// label), salted with the Deployment's collisionCount so that a collision can
// be escaped by bumping the count. It is safe in names and label values.
func templateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	t := template.DeepCopy()
	delete(t.Labels, PodTemplateHashLabel)
	h := fnv.New32a()
	// encoding/json writes map keys sorted, so equal templates hash equally.
	b, err := json.Marshal(t)
	if err != nil {
		// A PodTemplateSpec always marshals; a failure here is a bug.
		panic(fmt.Sprintf("marshalling a pod template: %v", err))
	}
	h.Write(b)
	if collisionCount != nil {
		fmt.Fprintf(h, "/%d", *collisionCount)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
