package volumes

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// podAddresses are the pod's and node's addresses, which the pod's status
// may not hold yet when its containers are created.
type podAddresses struct {
	podIP, hostIP string
}

// podFieldValue is the downward API's value of fieldPath for the pod, as
// upstream's kubelet computes it for env and volume files alike.
func podFieldValue(pod *skiffcorev1.Pod, fieldPath string, addrs podAddresses) (string, error) {
	if path, key, ok := splitSubscript(fieldPath); ok {
		switch path {
		case "metadata.labels":
			return pod.Labels[key], nil
		case "metadata.annotations":
			return pod.Annotations[key], nil
		}
		return "", fmt.Errorf("fieldPath %q does not support a subscript", fieldPath)
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return addrs.podIP, nil
	case "status.podIPs":
		return addrs.podIP, nil // single-stack: the one address
	case "status.hostIP", "status.hostIPs":
		return addrs.hostIP, nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", fieldPath)
}

// splitSubscript splits "metadata.labels['k']" into ("metadata.labels",
// "k", true).
func splitSubscript(fieldPath string) (path, key string, ok bool) {
	s, found := strings.CutSuffix(fieldPath, "']")
	if !found {
		return fieldPath, "", false
	}
	path, key, found = strings.Cut(s, "['")
	if !found || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// formatMap renders labels or annotations as upstream does: one `k="v"` line
// per key, sorted, values quoted Go-style.
func formatMap(m map[string]string) string {
	keys := sortedKeys(m)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}

// resourceFieldValue is the downward API's value of a resourceFieldRef for
// container c: its request or limit divided by the divisor, rounded up.
// Missing limits are the node's allocatable, and missing requests default to
// the limit the container sets, as the apiserver's defaulting would make them.
func resourceFieldValue(sel *corev1.ResourceFieldSelector, c *corev1.Container, allocatable corev1.ResourceList) (string, error) {
	kind, name, ok := strings.Cut(sel.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") || !supportedResource(corev1.ResourceName(name)) {
		return "", fmt.Errorf("unsupported resource %q: use requests.* or limits.* of cpu, memory, ephemeral-storage or hugepages-*", sel.Resource)
	}
	rn := corev1.ResourceName(name)
	limit, limited := c.Resources.Limits[rn]
	q := limit
	if kind == "requests" {
		if r, set := c.Resources.Requests[rn]; set {
			q = r
		}
	} else if !limited {
		q = allocatable[rn]
	}
	divisor := sel.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	var v float64
	if rn == corev1.ResourceCPU {
		v = math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
	} else {
		v = math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	}
	return strconv.FormatInt(int64(v), 10), nil
}

func supportedResource(rn corev1.ResourceName) bool {
	switch rn {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return true
	}
	return strings.HasPrefix(string(rn), corev1.ResourceHugePagesPrefix)
}

// containerNamed finds a container of the pod (init or regular) by name.
func containerNamed(pod *skiffcorev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}
