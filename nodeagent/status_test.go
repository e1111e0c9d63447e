package nodeagent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/podutil"
)

// Container states for the tables.
var (
	t0          = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	running     = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}
	exited0     = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	exited1     = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
	backingOff  = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	notReported = corev1.ContainerState{}
)

func TestPodPhase(t *testing.T) {
	type c struct {
		state corev1.ContainerState
		last  corev1.ContainerState
	}
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		init   []corev1.ContainerState
		app    []c
		want   corev1.PodPhase
	}{
		{"nothing started yet", corev1.RestartPolicyAlways, nil, []c{{state: notReported}}, corev1.PodPending},
		{"one of two still creating", corev1.RestartPolicyAlways, nil, []c{{state: running}, {state: notReported}}, corev1.PodPending},
		{"all running", corev1.RestartPolicyAlways, nil, []c{{state: running}, {state: running}}, corev1.PodRunning},
		{"init container still running", corev1.RestartPolicyAlways, []corev1.ContainerState{running}, []c{{state: notReported}}, corev1.PodPending},
		{"init container failed, Never", corev1.RestartPolicyNever, []corev1.ContainerState{exited1}, []c{{state: notReported}}, corev1.PodFailed},
		{"init container failed, OnFailure retries", corev1.RestartPolicyOnFailure, []corev1.ContainerState{exited1}, []c{{state: notReported}}, corev1.PodPending},
		{"init done, app running", corev1.RestartPolicyAlways, []corev1.ContainerState{exited0}, []c{{state: running}}, corev1.PodRunning},
		{"Never, exited 0", corev1.RestartPolicyNever, nil, []c{{state: exited0}}, corev1.PodSucceeded},
		{"Never, exited 1", corev1.RestartPolicyNever, nil, []c{{state: exited1}}, corev1.PodFailed},
		{"Never, one exited 1, one running", corev1.RestartPolicyNever, nil, []c{{state: exited1}, {state: running}}, corev1.PodRunning},
		{"Never, one 0 one 1", corev1.RestartPolicyNever, nil, []c{{state: exited0}, {state: exited1}}, corev1.PodFailed},
		{"OnFailure, exited 0", corev1.RestartPolicyOnFailure, nil, []c{{state: exited0}}, corev1.PodSucceeded},
		{"OnFailure, exited 1 and restarting", corev1.RestartPolicyOnFailure, nil, []c{{state: backingOff, last: exited1}}, corev1.PodRunning},
		{"Always, exited 0 and restarting", corev1.RestartPolicyAlways, nil, []c{{state: backingOff, last: exited0}}, corev1.PodRunning},
		{"Always, crash looping next to a running one", corev1.RestartPolicyAlways, nil, []c{{state: backingOff, last: exited1}, {state: running}}, corev1.PodRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &corev1.PodSpec{RestartPolicy: tc.policy}
			var initStatuses, statuses []corev1.ContainerStatus
			for i, s := range tc.init {
				spec.InitContainers = append(spec.InitContainers, corev1.Container{Name: "init" + string(rune('a'+i))})
				initStatuses = append(initStatuses, corev1.ContainerStatus{Name: "init" + string(rune('a'+i)), State: s})
			}
			for i, s := range tc.app {
				name := "app" + string(rune('a'+i))
				spec.Containers = append(spec.Containers, corev1.Container{Name: name})
				if s.state == notReported {
					s.state = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reasonContainerCreating}}
				}
				statuses = append(statuses, corev1.ContainerStatus{Name: name, State: s.state, LastTerminationState: s.last})
			}
			if got := podPhase(spec, initStatuses, statuses); got != tc.want {
				t.Errorf("phase = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPodStatusConditions(t *testing.T) {
	type want struct {
		phase                         corev1.PodPhase
		initialized, containersReady  corev1.ConditionStatus
		readyReason, containersReason string
	}
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		init   []ContainerStatus
		app    []ContainerStatus // for containers "a" and "b"; missing ones are being created
		want   want
	}{
		{"just bound", corev1.RestartPolicyAlways, nil, nil,
			want{corev1.PodPending, corev1.ConditionTrue, corev1.ConditionFalse, reasonContainersNotReady, reasonContainersNotReady}},
		{"all running and ready", corev1.RestartPolicyAlways, nil,
			[]ContainerStatus{{Name: "a", State: running, Ready: true}, {Name: "b", State: running, Ready: true}},
			want{corev1.PodRunning, corev1.ConditionTrue, corev1.ConditionTrue, "", ""}},
		{"one not ready", corev1.RestartPolicyAlways, nil,
			[]ContainerStatus{{Name: "a", State: running, Ready: true}, {Name: "b", State: running}},
			want{corev1.PodRunning, corev1.ConditionTrue, corev1.ConditionFalse, reasonContainersNotReady, reasonContainersNotReady}},
		{"init container running", corev1.RestartPolicyAlways, []ContainerStatus{{Name: "setup", State: running}}, nil,
			want{corev1.PodPending, corev1.ConditionFalse, corev1.ConditionFalse, reasonContainersNotReady, reasonContainersNotReady}},
		{"succeeded", corev1.RestartPolicyNever, nil,
			[]ContainerStatus{{Name: "a", State: exited0}, {Name: "b", State: exited0}},
			want{corev1.PodSucceeded, corev1.ConditionTrue, corev1.ConditionFalse, reasonPodCompleted, reasonPodCompleted}},
		{"failed", corev1.RestartPolicyNever, nil,
			[]ContainerStatus{{Name: "a", State: exited1}, {Name: "b", State: exited0}},
			want{corev1.PodFailed, corev1.ConditionTrue, corev1.ConditionFalse, reasonContainersNotReady, reasonContainersNotReady}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &skiffcorev1.Pod{Spec: corev1.PodSpec{
				RestartPolicy: tc.policy,
				Containers:    []corev1.Container{{Name: "a", Image: "a:1"}, {Name: "b", Image: "b:1"}},
			}}
			for _, c := range tc.init {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: c.Name})
			}
			status := podStatus(pod, RuntimePodStatus{InitContainers: tc.init, Containers: tc.app, PodIP: "10.244.0.5"}, "192.0.2.1", t0)
			if status.Phase != tc.want.phase {
				t.Errorf("phase = %s, want %s", status.Phase, tc.want.phase)
			}
			check := func(ct corev1.PodConditionType, s corev1.ConditionStatus, reason string) {
				c := podutil.Condition(&status, ct)
				if c == nil || c.Status != s || c.Reason != reason {
					t.Errorf("%s = %+v, want %s (%q)", ct, c, s, reason)
				}
			}
			check(corev1.PodScheduled, corev1.ConditionTrue, "")
			check(corev1.PodInitialized, tc.want.initialized, map[bool]string{true: "", false: reasonContainersNotInitialized}[tc.want.initialized == corev1.ConditionTrue])
			check(corev1.ContainersReady, tc.want.containersReady, tc.want.containersReason)
			check(corev1.PodReady, tc.want.containersReady, tc.want.readyReason)
			if status.PodIP != "10.244.0.5" || status.HostIP != "192.0.2.1" || status.StartTime == nil || len(status.ContainerStatuses) != 2 {
				t.Errorf("status = %+v, want podIP, hostIP, startTime and a status per container", status)
			}
		})
	}
}

// TestPodStatusIsStable checks that computing the status again from the
// stored one changes nothing, which is what keeps the agent from writing
// in a loop; and that a finished pod stays finished.
func TestPodStatusIsStable(t *testing.T) {
	pod := &skiffcorev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "a"}}}}
	// Nanoseconds that the apiserver drops must not count as a change.
	rs := RuntimePodStatus{Containers: []ContainerStatus{{Name: "a", ID: "sim://1", State: corev1.ContainerState{
		Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(123 * time.Millisecond))}}, Ready: true}}}
	first := podStatus(pod, rs, "192.0.2.1", t0.Add(456*time.Millisecond))
	pod.Status = roundTrip(first)
	second := podStatus(pod, rs, "192.0.2.1", t0.Add(time.Minute))
	if !equality.Semantic.DeepEqual(pod.Status, second) {
		t.Errorf("a second pass changed the status:\n%+v\n%+v", pod.Status, second)
	}

	pod.Status.Phase = corev1.PodSucceeded
	if got := podStatus(pod, rs, "192.0.2.1", t0); got.Phase != corev1.PodSucceeded {
		t.Errorf("a succeeded pod went back to %s", got.Phase)
	}
}

// roundTrip keeps a status's times to the second, as the apiserver stores them.
func roundTrip(s corev1.PodStatus) corev1.PodStatus {
	out := *s.DeepCopy()
	for i := range out.Conditions {
		out.Conditions[i].LastTransitionTime = out.Conditions[i].LastTransitionTime.Rfc3339Copy()
	}
	return out
}

func TestQOSClass(t *testing.T) {
	res := func(kv ...string) corev1.ResourceList {
		rl := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			rl[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return rl
	}
	cases := []struct {
		name      string
		resources []corev1.ResourceRequirements
		want      corev1.PodQOSClass
	}{
		{"nothing set", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"requests only", []corev1.ResourceRequirements{{Requests: res("cpu", "100m")}}, corev1.PodQOSBurstable},
		{"limits equal requests", []corev1.ResourceRequirements{{Requests: res("cpu", "1", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"limits only (requests default to them)", []corev1.ResourceRequirements{{Limits: res("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"memory limit missing", []corev1.ResourceRequirements{{Limits: res("cpu", "1")}}, corev1.PodQOSBurstable},
		{"one guaranteed, one best effort", []corev1.ResourceRequirements{{Limits: res("cpu", "1", "memory", "1Gi")}, {}}, corev1.PodQOSBurstable},
		{"requests below limits", []corev1.ResourceRequirements{{Requests: res("cpu", "500m", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSBurstable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := &corev1.PodSpec{}
			for i, r := range tc.resources {
				spec.Containers = append(spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
			}
			if got := qosClass(spec); got != tc.want {
				t.Errorf("qosClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSidecarInitContainerCountsOnceStarted(t *testing.T) {
	spec := &corev1.PodSpec{InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}}
	started := []corev1.ContainerStatus{{Name: "proxy", State: running, Started: ptr.To(true)}}
	if !initialized(spec, started) {
		t.Error("a started sidecar does not count as initialized")
	}
	if initialized(spec, []corev1.ContainerStatus{{Name: "proxy", State: backingOff, Started: ptr.To(false)}}) {
		t.Error("a sidecar that has not started counts as initialized")
	}
}
