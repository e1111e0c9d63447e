package containerd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/containerd/containerd"
)

// Labels on every container skiff creates. They hold all that the agent
// knows of a container, so that an agent that restarts reads back its pods
// from containerd alone: which pod and container a run belongs to, which
// run it is, and how its finished runs ended.
const (
	labelPodUID        = "io.skiff.pod.uid"
	labelPodName       = "io.skiff.pod.name"
	labelPodNamespace  = "io.skiff.pod.namespace"
	labelContainerName = "io.skiff.container.name"
	labelAttempt       = "io.skiff.container.attempt"
	labelCrashes       = "io.skiff.container.crashes"
	labelStartedAt     = "io.skiff.container.started-at"
	labelFinishedAt    = "io.skiff.container.finished-at"
	labelExitCode      = "io.skiff.container.exit-code"
	labelOOMKilled     = "io.skiff.container.oom-killed"
	labelImageRef      = "io.skiff.container.image"
)

// containerID names a container's run. It is derived from the pod, the
// container and the attempt, so that a pass that is interrupted between
// creating and starting a container finds it again instead of creating a
// second one.
func containerID(podUID, name string, attempt int) string {
	sum := sha256.Sum256([]byte(podUID + "/" + name))
	return fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:12]), attempt)
}

// observe reads a container's run from its labels and, while it has one,
// its task's status.
func observeLabels(labels map[string]string) *observedContainer {
	o := &observedContainer{
		Name:    labels[labelContainerName],
		Attempt: atoi(labels[labelAttempt]),
		Crashes: atoi(labels[labelCrashes]),
		State:   stateCreated,
	}
	if t, err := time.Parse(time.RFC3339Nano, labels[labelStartedAt]); err == nil {
		o.StartedAt, o.State = t, stateRunning
	}
	if t, err := time.Parse(time.RFC3339Nano, labels[labelFinishedAt]); err == nil {
		o.FinishedAt, o.State = t, stateExited
		o.ExitCode = int32(atoi(labels[labelExitCode]))
		o.OOMKilled = labels[labelOOMKilled] == "true"
	}
	return o
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// taskStatusTime is a task's exit time, or now when containerd has none.
func exitTime(st containerd.Status, now time.Time) time.Time {
	if st.ExitTime.IsZero() {
		return now
	}
	return st.ExitTime
}
