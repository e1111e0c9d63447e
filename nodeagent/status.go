package nodeagent

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// Reasons and messages the agent writes into pod status, as upstream's
// kubelet words them so that tools that read them keep working.
const (
	reasonContainerCreating        = "ContainerCreating"
	reasonCreateContainerError     = "CreateContainerError"
	reasonPodInitializing          = "PodInitializing"
	reasonContainersNotInitialized = "ContainersNotInitialized"
	reasonContainersNotReady       = "ContainersNotReady"
	reasonPodCompleted             = "PodCompleted"
)

// podStatus computes the status a pod should have from its previous status,
// its spec and what the runtime reports. It is pure: the same inputs give
// the same status, so that a pass that learns nothing new writes nothing.
// Times are kept to the second, as the apiserver stores them, for the same
// reason.
func podStatus(pod *skiffcorev1.Pod, rs RuntimePodStatus, hostIP string, now time.Time) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	spec := &pod.Spec

	status.InitContainerStatuses = containerStatuses(spec.InitContainers, rs.InitContainers, reasonPodInitializing)
	status.ContainerStatuses = containerStatuses(spec.Containers, rs.Containers, reasonContainerCreating)

	// A finished pod stays finished: its containers are not run again, so
	// a later pass must not turn Succeeded back into Running.
	if !podutil.IsTerminal(pod) {
		status.Phase = podPhase(spec, status.InitContainerStatuses, status.ContainerStatuses)
	}

	podutil.SetCondition(&status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue})
	podutil.SetCondition(&status, initializedCondition(spec, status.InitContainerStatuses))
	ready := readyCondition(status.Phase, spec, status.ContainerStatuses)
	ready.Type = corev1.ContainersReady
	podutil.SetCondition(&status, ready)
	ready.Type = corev1.PodReady
	podutil.SetCondition(&status, ready)

	if rs.PodIP != "" {
		status.PodIP = rs.PodIP
		status.PodIPs = []corev1.PodIP{{IP: rs.PodIP}}
	}
	if hostIP != "" {
		status.HostIP = hostIP
		status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	}
	if status.StartTime == nil {
		status.StartTime = ptrTime(now)
	}
	if status.QOSClass == "" {
		status.QOSClass = qosClass(spec)
	}
	return status
}

// containerStatuses lists the status of each container of the spec, in the
// spec's order: what the runtime reports, or waiting with reason when the
// runtime has not created the container yet.
func containerStatuses(spec []corev1.Container, reported []ContainerStatus, reason string) []corev1.ContainerStatus {
	if len(spec) == 0 {
		return nil
	}
	byName := make(map[string]*ContainerStatus, len(reported))
	for i := range reported {
		byName[reported[i].Name] = &reported[i]
	}
	out := make([]corev1.ContainerStatus, 0, len(spec))
	for _, c := range spec {
		rc, ok := byName[c.Name]
		if !ok {
			out = append(out, corev1.ContainerStatus{
				Name:  c.Name,
				Image: c.Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
			})
			continue
		}
		started := rc.State.Running != nil && !rc.StartupPending
		out = append(out, corev1.ContainerStatus{
			Name:                 c.Name,
			Image:                c.Image,
			ImageID:              rc.ImageID,
			ContainerID:          rc.ID,
			State:                toSeconds(rc.State),
			LastTerminationState: toSeconds(rc.LastTerminationState),
			Ready:                rc.Ready && started,
			Started:              &started,
			RestartCount:         rc.RestartCount,
		})
	}
	return out
}

// podPhase is the pod's phase from its containers' states and restart
// policy, as upstream's kubelet decides it: Pending until every init
// container succeeded and every container has started once; Running while
// any runs or will be restarted; Succeeded or Failed once all have exited
// for good.
func podPhase(spec *corev1.PodSpec, initStatuses, statuses []corev1.ContainerStatus) corev1.PodPhase {
	if !initialized(spec, initStatuses) {
		if spec.RestartPolicy == corev1.RestartPolicyNever && anyFailed(initStatuses) {
			return corev1.PodFailed
		}
		return corev1.PodPending
	}
	var running, waiting, exited, succeeded int
	for _, s := range statuses {
		last := s.State.Terminated
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			// Waiting to be restarted: it has run, and its last exit counts.
			last = s.LastTerminationState.Terminated
		default:
			waiting++
		}
		if last != nil {
			exited++
			if last.ExitCode == 0 {
				succeeded++
			}
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case exited == 0:
		return corev1.PodPending
	}
	// Every container has exited; whether that is the end depends on the
	// restart policy.
	allSucceeded := succeeded == exited
	switch spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		if allSucceeded {
			return corev1.PodSucceeded
		}
		return corev1.PodFailed
	case corev1.RestartPolicyOnFailure:
		if allSucceeded {
			return corev1.PodSucceeded
		}
		return corev1.PodRunning
	default:
		return corev1.PodRunning
	}
}

// initialized reports whether every init container has done its part:
// exited 0, or, for a sidecar (an init container with restartPolicy
// Always), started.
func initialized(spec *corev1.PodSpec, initStatuses []corev1.ContainerStatus) bool {
	return len(incompleteInit(spec, initStatuses)) == 0
}

// incompleteInit names the init containers that have not done their part.
func incompleteInit(spec *corev1.PodSpec, initStatuses []corev1.ContainerStatus) []string {
	var names []string
	for i, c := range spec.InitContainers {
		var s *corev1.ContainerStatus
		if i < len(initStatuses) {
			s = &initStatuses[i]
		}
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case s == nil:
			names = append(names, c.Name)
		case sidecar && s.Started != nil && *s.Started:
		case !sidecar && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0:
		default:
			names = append(names, c.Name)
		}
	}
	return names
}

// anyFailed reports whether an init container exited non-zero.
func anyFailed(statuses []corev1.ContainerStatus) bool {
	for _, s := range statuses {
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			return true
		}
	}
	return false
}

// initializedCondition is the pod's Initialized condition.
func initializedCondition(spec *corev1.PodSpec, initStatuses []corev1.ContainerStatus) corev1.PodCondition {
	if names := incompleteInit(spec, initStatuses); len(names) > 0 {
		return corev1.PodCondition{
			Type: corev1.PodInitialized, Status: corev1.ConditionFalse, Reason: reasonContainersNotInitialized,
			Message: fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(names, " ")),
		}
	}
	return corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
}

// readyCondition is the pod's ContainersReady condition, and its Ready
// condition too: the agent does not evaluate readiness gates yet, so both
// agree. The caller sets the type.
func readyCondition(phase corev1.PodPhase, spec *corev1.PodSpec, statuses []corev1.ContainerStatus) corev1.PodCondition {
	if phase == corev1.PodSucceeded {
		return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: reasonPodCompleted}
	}
	var unready []string
	for _, s := range statuses {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	if len(unready) > 0 || len(spec.Containers) == 0 {
		return corev1.PodCondition{
			Status: corev1.ConditionFalse, Reason: reasonContainersNotReady,
			Message: fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")),
		}
	}
	return corev1.PodCondition{Status: corev1.ConditionTrue}
}

// qosClass is the pod's quality-of-service class, from its containers'
// cpu and memory requests and limits: BestEffort when none sets any,
// Guaranteed when every container limits both and requests what it limits,
// Burstable otherwise.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	containers := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	anySet, guaranteed := false, true
	for _, c := range containers {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[name]
			lim, hasLim := c.Resources.Limits[name]
			if (hasReq && !req.IsZero()) || (hasLim && !lim.IsZero()) {
				anySet = true
			}
			if !hasLim || lim.IsZero() || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !anySet:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}

// toSeconds rounds a container state's times down to the second, the
// precision the apiserver keeps, so that comparing a computed status with
// the stored one does not see a change that is not there.
func toSeconds(s corev1.ContainerState) corev1.ContainerState {
	out := *s.DeepCopy()
	if out.Running != nil {
		out.Running.StartedAt = out.Running.StartedAt.Rfc3339Copy()
	}
	if out.Terminated != nil {
		out.Terminated.StartedAt = out.Terminated.StartedAt.Rfc3339Copy()
		out.Terminated.FinishedAt = out.Terminated.FinishedAt.Rfc3339Copy()
	}
	return out
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t).Rfc3339Copy()
	return &mt
}
