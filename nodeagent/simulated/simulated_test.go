package simulated

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
)

var start = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newPod(uid string, policy corev1.RestartPolicy, annotations map[string]string) *skiffcorev1.Pod {
	return &skiffcorev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: uid, Namespace: "ns", UID: types.UID(uid), Annotations: annotations},
		Spec: corev1.PodSpec{
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
}

// step is what the runtime should report at one moment.
type step struct {
	at           time.Duration // after the pod was first synced
	state        string        // "creating", "running", "exited", "backoff"
	exitCode     int32
	restartCount int32
	nextChange   time.Duration // -1: none
}

// TestTimetable walks simulated pods through time with a fake clock.
func TestTimetable(t *testing.T) {
	opts := Options{StartDelay: time.Second, RunDuration: 5 * time.Second, RestartBackoff: 2 * time.Second}
	cases := []struct {
		name        string
		policy      corev1.RestartPolicy
		annotations map[string]string
		steps       []step
	}{
		{"Always runs until killed", corev1.RestartPolicyAlways, nil, []step{
			{0, "creating", 0, 0, time.Second},
			{time.Second, "running", 0, 0, -1},
			{time.Hour, "running", 0, 0, -1},
		}},
		{"Never exits 0 after the run duration", corev1.RestartPolicyNever, nil, []step{
			{2 * time.Second, "running", 0, 0, 6 * time.Second},
			{6 * time.Second, "exited", 0, 0, -1},
			{time.Hour, "exited", 0, 0, -1},
		}},
		{"Never with exit code 3", corev1.RestartPolicyNever, map[string]string{ExitCodeAnnotation: "3", RunSecondsAnnotation: "1.5"}, []step{
			{2500 * time.Millisecond, "exited", 3, 0, -1},
		}},
		{"OnFailure restarts a failure with back-off", corev1.RestartPolicyOnFailure, map[string]string{ExitCodeAnnotation: "1", RunSecondsAnnotation: "1"}, []step{
			{1500 * time.Millisecond, "running", 0, 0, 2 * time.Second},
			// exits at 2s, waits 2s, runs again at 4s (restart 1), exits at 5s, waits 4s.
			{3 * time.Second, "backoff", 1, 0, 4 * time.Second},
			{4 * time.Second, "running", 0, 1, 5 * time.Second},
			{6 * time.Second, "backoff", 1, 1, 9 * time.Second},
			{9 * time.Second, "running", 0, 2, 10 * time.Second},
		}},
		{"OnFailure does not restart a success", corev1.RestartPolicyOnFailure, nil, []step{
			{time.Minute, "exited", 0, 0, -1},
		}},
		{"Always restarts a crash", corev1.RestartPolicyAlways, map[string]string{RunSecondsAnnotation: "0"}, []step{
			{time.Second, "backoff", 0, 0, 3 * time.Second},
			{3 * time.Second, "backoff", 0, 1, 7 * time.Second},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktesting.NewFakePassiveClock(start)
			o := opts
			o.Clock = clock
			r := New(o)
			p := newPod("uid-1", tc.policy, tc.annotations)
			if _, err := r.SyncPod(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.steps {
				clock.SetTime(start.Add(s.at))
				st, err := r.SyncPod(context.Background(), p)
				if err != nil {
					t.Fatal(err)
				}
				checkStep(t, s, st)
			}
		})
	}
}

func checkStep(t *testing.T, s step, st nodeagent.RuntimePodStatus) {
	t.Helper()
	wantNext := time.Time{}
	if s.nextChange >= 0 {
		wantNext = start.Add(s.nextChange)
	}
	if !st.NextChange.Equal(wantNext) {
		t.Errorf("at %s: next change %v, want %v", s.at, st.NextChange, wantNext)
	}
	if s.state == "creating" {
		if len(st.Containers) != 0 {
			t.Errorf("at %s: %+v, want the container still being created", s.at, st.Containers)
		}
		return
	}
	if len(st.Containers) != 1 {
		t.Fatalf("at %s: %+v, want one container", s.at, st.Containers)
	}
	c := st.Containers[0]
	if c.RestartCount != s.restartCount {
		t.Errorf("at %s: restartCount %d, want %d", s.at, c.RestartCount, s.restartCount)
	}
	switch s.state {
	case "running":
		if c.State.Running == nil || !c.Ready {
			t.Errorf("at %s: %+v, want running and ready", s.at, c.State)
		}
	case "exited":
		if c.State.Terminated == nil || c.State.Terminated.ExitCode != s.exitCode || c.Ready {
			t.Errorf("at %s: %+v, want exited with %d", s.at, c.State, s.exitCode)
		}
	case "backoff":
		last := c.LastTerminationState.Terminated
		if c.State.Waiting == nil || c.State.Waiting.Reason != "CrashLoopBackOff" || last == nil || last.ExitCode != s.exitCode {
			t.Errorf("at %s: %+v (last %+v), want CrashLoopBackOff after exit %d", s.at, c.State, c.LastTerminationState, s.exitCode)
		}
	}
}

func TestInitContainersCompleteAndSidecarsRun(t *testing.T) {
	r := New(Options{})
	p := newPod("uid-2", corev1.RestartPolicyAlways, nil)
	p.Spec.InitContainers = []corev1.Container{
		{Name: "setup", Image: "busybox"},
		{Name: "proxy", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
	}
	st, err := r.SyncPod(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.InitContainers) != 2 || st.InitContainers[0].State.Terminated == nil || st.InitContainers[0].State.Terminated.ExitCode != 0 ||
		st.InitContainers[1].State.Running == nil {
		t.Errorf("init containers %+v, want setup exited 0 and the proxy sidecar running", st.InitContainers)
	}
	if len(st.Containers) != 1 || st.Containers[0].State.Running == nil {
		t.Errorf("containers %+v, want app running", st.Containers)
	}
}

func TestPodIPsComeFromThePodCIDRAndAreReleased(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	if st, _ := r.SyncPod(ctx, newPod("no-cidr", corev1.RestartPolicyAlways, nil)); st.PodIP != "" {
		t.Errorf("a pod got %q before the node had a podCIDR", st.PodIP)
	}
	if err := r.UpdatePodCIDR("10.244.3.0/30"); err != nil {
		t.Fatal(err)
	}
	// A /30 has one address for pods: .0 is the network, .1 the gateway,
	// .3 the broadcast.
	first, err := r.SyncPod(ctx, newPod("a", corev1.RestartPolicyAlways, nil))
	if err != nil || first.PodIP != "10.244.3.2" {
		t.Fatalf("first pod: %q, %v; want 10.244.3.2", first.PodIP, err)
	}
	if _, err := r.SyncPod(ctx, newPod("b", corev1.RestartPolicyAlways, nil)); err == nil {
		t.Fatal("a second pod got an address from a full podCIDR")
	}
	if err := r.KillPod(ctx, newPod("a", corev1.RestartPolicyAlways, nil), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.RemovePod(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st, err := r.SyncPod(ctx, newPod("b", corev1.RestartPolicyAlways, nil)); err != nil || st.PodIP != "10.244.3.2" {
		t.Errorf("after the first pod went: %q, %v; want its address reused", st.PodIP, err)
	}
	pods, _ := r.ListPods(ctx)
	if len(pods) != 2 { // no-cidr and b
		t.Errorf("ListPods = %v, want the two live pods", pods)
	}
}

func TestIPPoolSkipsReservedAddresses(t *testing.T) {
	p, err := newIPPool("10.0.0.0/29")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		a, err := p.allocate()
		if err != nil {
			break
		}
		got = append(got, a.String())
	}
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	p.release(netip.MustParseAddr("10.0.0.4"))
	if a, err := p.allocate(); err != nil || a.String() != "10.0.0.4" {
		t.Errorf("after a release: %v, %v; want 10.0.0.4", a, err)
	}
	if _, err := newIPPool("not a cidr"); err == nil {
		t.Error("a bad podCIDR was accepted")
	}
}

func TestKillPodStopsContainers(t *testing.T) {
	ctx := context.Background()
	r := New(Options{})
	p := newPod("k", corev1.RestartPolicyAlways, nil)
	if _, err := r.SyncPod(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := r.KillPod(ctx, p, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, _ := r.SyncPod(ctx, p)
	if len(st.Containers) != 1 || st.Containers[0].State.Terminated == nil {
		t.Errorf("after KillPod: %+v, want the container exited and not restarted", st.Containers)
	}
}

func TestBadAnnotationsAreRefused(t *testing.T) {
	for _, ann := range []map[string]string{{ExitCodeAnnotation: "boom"}, {ExitCodeAnnotation: "300"}, {RunSecondsAnnotation: "-1"}} {
		if _, err := New(Options{}).SyncPod(context.Background(), newPod("bad", corev1.RestartPolicyNever, ann)); err == nil {
			t.Errorf("annotations %v were accepted", ann)
		}
	}
}

// TestAdoptsWhatThePodReports checks that a restarted agent's runtime takes
// over a running pod as it was: same address, start time, restart count
// and container ID, so that its status needs no rewrite.
func TestAdoptsWhatThePodReports(t *testing.T) {
	ctx := context.Background()
	clock := clocktesting.NewFakePassiveClock(start)
	before := New(Options{Clock: clock})
	if err := before.UpdatePodCIDR("10.244.9.0/24"); err != nil {
		t.Fatal(err)
	}
	// Other pods first, so that the adopted address is not the one a
	// fresh runtime would hand out first anyway.
	for _, uid := range []string{"a", "b", "c"} {
		if _, err := before.SyncPod(ctx, newPod(uid, corev1.RestartPolicyAlways, nil)); err != nil {
			t.Fatal(err)
		}
	}
	p := newPod("adopt", corev1.RestartPolicyAlways, nil)
	was, err := before.SyncPod(ctx, p)
	if err != nil || was.PodIP != "10.244.9.5" {
		t.Fatalf("before: %q, %v; want 10.244.9.5", was.PodIP, err)
	}
	p.Status.PodIP = was.PodIP
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "app", RestartCount: 4, State: was.Containers[0].State,
	}}

	clock.SetTime(start.Add(time.Hour))
	after := New(Options{Clock: clock})
	if err := after.UpdatePodCIDR("10.244.9.0/24"); err != nil {
		t.Fatal(err)
	}
	now, err := after.SyncPod(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	c := now.Containers[0]
	if now.PodIP != was.PodIP || c.RestartCount != 4 || c.State.Running == nil || !c.State.Running.StartedAt.Equal(&was.Containers[0].State.Running.StartedAt) {
		t.Errorf("after a restart: ip %s, %+v; want ip %s and the running container as it was", now.PodIP, c, was.PodIP)
	}
}
