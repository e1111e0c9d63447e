package podio

import (
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// phaseRank orders pods by how likely they are to have logs worth
// reading: running, then unknown, then pending, then the finished ones.
func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodRunning:
		return 0
	case corev1.PodUnknown:
		return 1
	case corev1.PodPending:
		return 2
	default:
		return 3
	}
}

// byLogging reports whether a is a better pod to show the logs of than b,
// by kubectl's order for a workload's pod: scheduled, then by phase,
// ready, ready for longer, restarted more, and older.
func byLogging(a, b *skiffcorev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName != ""
	}
	if ra, rb := phaseRank(a.Status.Phase), phaseRank(b.Status.Phase); ra != rb {
		return ra < rb
	}
	if ra, rb := podutil.IsReady(a), podutil.IsReady(b); ra != rb {
		return ra
	}
	if podutil.IsReady(a) {
		ta, tb := readySince(a), readySince(b)
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
	}
	if ra, rb := restarts(a), restarts(b); ra != rb {
		return ra > rb
	}
	return a.CreationTimestamp.Before(&b.CreationTimestamp)
}

// readySince is when the pod last became ready.
func readySince(p *skiffcorev1.Pod) metav1.Time {
	if c := podutil.Condition(&p.Status, corev1.PodReady); c != nil {
		return c.LastTransitionTime
	}
	return metav1.Time{}
}

func restarts(p *skiffcorev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// defaultContainerAnnotation names the container kubectl picks when none
// is given.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// containerNames are the names of a pod's containers, init containers
// first, as they run. (skiff's node agent runs no ephemeral containers.)
func containerNames(p *skiffcorev1.Pod) []string {
	return append(names(p.Spec.InitContainers), names(p.Spec.Containers)...)
}

func names(containers []corev1.Container) []string {
	out := make([]string, 0, len(containers))
	for _, c := range containers {
		out = append(out, c.Name)
	}
	return out
}

// listedContainers lists a pod's containers for a message in kubectl's
// words: the containers, then the init containers marked "(init)".
func listedContainers(p *skiffcorev1.Pod) string {
	all := names(p.Spec.Containers)
	for _, c := range p.Spec.InitContainers {
		all = append(all, c.Name+" (init)")
	}
	return strings.Join(all, ", ")
}

// chooseContainer is the container a command acts on, as kubectl (1.24
// and later) chooses it: the one named, else the one the pod's
// default-container annotation names, else its first container. Falling
// back to the first says so on warn, when the pod has others, since the
// user may have meant another.
func chooseContainer(p *skiffcorev1.Pod, name string, warn io.Writer) (string, error) {
	all := containerNames(p)
	if name != "" {
		if !slices.Contains(all, name) {
			return "", fmt.Errorf("container %s is not valid for pod %s out of: %s", name, p.Name, listedContainers(p))
		}
		return name, nil
	}
	if def := p.Annotations[defaultContainerAnnotation]; def != "" {
		if slices.Contains(all, def) {
			return def, nil
		}
		fmt.Fprintf(warn, "Default container name %q not found in pod %s\n", def, p.Name)
	}
	if len(p.Spec.Containers) == 0 {
		return "", fmt.Errorf("pod %s/%s does not have any containers", p.Namespace, p.Name)
	}
	first := p.Spec.Containers[0].Name
	if len(all) > 1 {
		fmt.Fprintf(warn, "Defaulted container %q out of: %s\n", first, listedContainers(p))
	}
	return first, nil
}
