package nodeagent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// Runtime is what the pod loop needs from a container runtime. It is shaped
// after the CRI so that containerd can implement it: the runtime starts and
// keeps containers and reports what it sees; the agent turns that into the
// pod's status (phase, conditions, containerStatuses) in one place, so that
// the real and the simulated runtimes go through the same status path.
type Runtime interface {
	// SyncPod starts or keeps the pod's containers as its spec says,
	// restarting exited ones as its restartPolicy allows, and returns what
	// runs. It is called on every pass and must be idempotent.
	SyncPod(ctx context.Context, pod *skiffcorev1.Pod) (RuntimePodStatus, error)
	// KillPod stops every container of the pod, giving each up to grace to
	// exit, and releases the pod's network (its IP); the stopped containers
	// are kept until RemovePod. Killing a pod that is not running is not an
	// error.
	KillPod(ctx context.Context, pod *skiffcorev1.Pod, grace time.Duration) error
	// RemovePod forgets a killed pod and releases what it held (its IP).
	RemovePod(ctx context.Context, uid types.UID) error
	// ListPods lists the pods the runtime knows, so that an agent that
	// restarts can adopt or clean up what the previous one left.
	ListPods(ctx context.Context) ([]RuntimePod, error)
	// UpdatePodCIDR tells the runtime the node's podCIDR, which pod IPs come
	// from, as the CRI's UpdateRuntimeConfig does. Empty means none yet.
	UpdatePodCIDR(cidr string) error
	// Version names the runtime and its version, e.g. "simulated://0.1",
	// for the Node's nodeInfo.containerRuntimeVersion.
	Version() string
}

// Notifier is a Runtime that learns of changes on its own: a container
// exits, the kernel kills one for memory, a probe's verdict flips. The
// agent then syncs the pod at once, instead of polling every pod.
type Notifier interface {
	// Notify calls notify for each such change until ctx ends.
	Notify(ctx context.Context, notify func(RuntimePod))
}

// NetworkReporter is a Runtime whose pod network may not be ready (no
// podCIDR yet, CNI plugins missing); the node reports NotReady until it is.
type NetworkReporter interface {
	NetworkReady() error
}

// RuntimePod identifies a pod that the runtime knows.
type RuntimePod struct {
	UID       types.UID
	Namespace string
	Name      string
}

// RuntimePodStatus is what the runtime sees of one pod.
type RuntimePodStatus struct {
	// PodIP is the pod's address; empty when the node has no podCIDR.
	PodIP string
	// InitContainers and Containers hold the containers the runtime has
	// created; a container of the spec that is missing here is still being
	// created.
	InitContainers []ContainerStatus
	Containers     []ContainerStatus
	// NextChange is when the runtime knows a container's state will change
	// (a simulated exit, the end of a restart back-off); zero when unknown.
	// The agent looks again then, since no event will tell it.
	NextChange time.Time
}

// ContainerStatus is what the runtime sees of one container.
type ContainerStatus struct {
	Name    string
	ID      string // "<runtime>://<id>"
	Image   string
	ImageID string
	// State is the container's current state; LastTerminationState its
	// previous run's end, once it has restarted.
	State                corev1.ContainerState
	LastTerminationState corev1.ContainerState
	RestartCount         int32
	// Ready is the container's readiness; the runtime reports it because
	// readiness probes run next to the containers.
	Ready bool
	// StartupPending is set while a running container's startup probe has
	// not yet succeeded (status.containerStatuses[].started is false).
	StartupPending bool
}

// Restarts reports whether a container that exited with code runs again
// under the pod's restartPolicy: always, on failure only, or never.
func Restarts(policy corev1.RestartPolicy, code int32) bool {
	switch policy {
	case corev1.RestartPolicyAlways:
		return true
	case corev1.RestartPolicyOnFailure:
		return code != 0
	default:
		return false
	}
}
