package containerd

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestRestartDelay(t *testing.T) {
	for crashes, want := range map[int]time.Duration{
		0: 0, 1: 0, 2: 10 * time.Second, 3: 20 * time.Second, 4: 40 * time.Second,
		6: 160 * time.Second, 7: 5 * time.Minute, 50: 5 * time.Minute,
	} {
		if got := restartDelay(crashes); got != want {
			t.Errorf("restartDelay(%d) = %s, want %s", crashes, got, want)
		}
	}
}

func TestPlanPod(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	exited := func(code int32, ranFor time.Duration, attempt, crashes int) *observedContainer {
		return &observedContainer{State: stateExited, ExitCode: code, StartedAt: now.Add(-ranFor - time.Second), FinishedAt: now.Add(-time.Second), Attempt: attempt, Crashes: crashes}
	}
	runningC := &observedContainer{State: stateRunning, StartedAt: now.Add(-time.Minute)}
	always := corev1.ContainerRestartPolicyAlways
	spec := func(policy corev1.RestartPolicy, init []string, sidecars []string, main ...string) *corev1.PodSpec {
		s := &corev1.PodSpec{RestartPolicy: policy}
		for _, n := range init {
			s.InitContainers = append(s.InitContainers, corev1.Container{Name: n})
		}
		for _, n := range sidecars {
			s.InitContainers = append(s.InitContainers, corev1.Container{Name: n, RestartPolicy: ptr.To(always)})
		}
		for _, n := range main {
			s.Containers = append(s.Containers, corev1.Container{Name: n})
		}
		return s
	}
	cases := []struct {
		name      string
		spec      *corev1.PodSpec
		observed  map[string]*observedContainer
		start     []string
		kill      []string
		backingOf []string
		failed    bool
	}{
		{"a new pod starts its first init container only", spec(corev1.RestartPolicyAlways, []string{"i1", "i2"}, nil, "a"), nil, []string{"i1"}, nil, nil, false},
		{"the next init container after one succeeded", spec(corev1.RestartPolicyAlways, []string{"i1", "i2"}, nil, "a"), map[string]*observedContainer{"i1": exited(0, time.Second, 0, 0)}, []string{"i2"}, nil, nil, false},
		{"main containers after every init container", spec(corev1.RestartPolicyAlways, []string{"i1"}, nil, "a", "b"), map[string]*observedContainer{"i1": exited(0, time.Second, 0, 0)}, []string{"a", "b"}, nil, nil, false},
		{"a failed init container under Never fails the pod", spec(corev1.RestartPolicyNever, []string{"i1"}, nil, "a"), map[string]*observedContainer{"i1": exited(1, time.Second, 0, 0)}, nil, nil, nil, true},
		{"a failed init container restarts at once the first time", spec(corev1.RestartPolicyOnFailure, []string{"i1"}, nil, "a"), map[string]*observedContainer{"i1": exited(1, time.Second, 0, 0)}, []string{"i1"}, nil, nil, false},
		{"a sidecar starts and the main containers wait for it to run", spec(corev1.RestartPolicyNever, nil, []string{"s"}, "a"), nil, []string{"s"}, nil, nil, false},
		{"main containers start once the sidecar runs", spec(corev1.RestartPolicyNever, nil, []string{"s"}, "a"), map[string]*observedContainer{"s": runningC}, []string{"a"}, nil, nil, false},
		{"the sidecar stops once main containers are done", spec(corev1.RestartPolicyNever, nil, []string{"s"}, "a"), map[string]*observedContainer{"s": runningC, "a": exited(0, time.Second, 0, 0)}, nil, []string{"s"}, nil, false},
		{"a second quick crash backs off", spec(corev1.RestartPolicyAlways, nil, nil, "a"), map[string]*observedContainer{"a": exited(1, time.Second, 1, 1)}, nil, nil, []string{"a"}, false},
		{"a crash after a long run restarts at once", spec(corev1.RestartPolicyAlways, nil, nil, "a"), map[string]*observedContainer{"a": exited(1, 11*time.Minute, 5, 5)}, []string{"a"}, nil, nil, false},
		{"OnFailure does not restart a success", spec(corev1.RestartPolicyOnFailure, nil, nil, "a"), map[string]*observedContainer{"a": exited(0, time.Second, 0, 0)}, nil, nil, nil, false},
		{"Never does not restart a failure", spec(corev1.RestartPolicyNever, nil, nil, "a"), map[string]*observedContainer{"a": exited(2, time.Second, 0, 0)}, nil, nil, nil, false},
		{"a run created but never started is started", spec(corev1.RestartPolicyAlways, nil, nil, "a"), map[string]*observedContainer{"a": {State: stateCreated, Attempt: 2}}, []string{"a"}, nil, nil, false},
		{"running containers are left alone", spec(corev1.RestartPolicyAlways, nil, nil, "a"), map[string]*observedContainer{"a": runningC}, nil, nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for n, o := range tc.observed {
				o.Name = n
			}
			plan := planPod(tc.spec, tc.observed, now)
			var started []string
			for _, s := range plan.Start {
				started = append(started, s.Name)
			}
			var backing []string
			for n := range plan.BackingOff {
				backing = append(backing, n)
			}
			if !reflect.DeepEqual(started, tc.start) || !reflect.DeepEqual(plan.Kill, tc.kill) || !reflect.DeepEqual(backing, tc.backingOf) || plan.Failed != tc.failed {
				t.Errorf("plan: start %v kill %v backing off %v failed %v; want %v %v %v %v", started, plan.Kill, backing, plan.Failed, tc.start, tc.kill, tc.backingOf, tc.failed)
			}
		})
	}
}
