package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// echoContainer runs the echo server, answering with its pod's name.
func echoContainer(env ...corev1.EnvVar) corev1.Container {
	return corev1.Container{
		Name: "web", Image: echo,
		Env:   append([]corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}, env...),
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
	}
}

func get(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestPodRunsAndAnswersOnItsIP: a pod gets an address from the node's
// podCIDR, its env from the downward API, its hostname, and answers on its
// IP from the node.
func TestPodRunsAndAnswersOnItsIP(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("web", echoContainer()))
	got := waitPod(t, p, 60*time.Second, running)
	_, cidr, _ := net.ParseCIDR(n.podCIDR)
	if ip := net.ParseIP(got.Status.PodIP); ip == nil || !cidr.Contains(ip) {
		t.Fatalf("podIP %q is not in the node's podCIDR %s", got.Status.PodIP, n.podCIDR)
	}
	if got.Status.HostIP != "127.0.0.1" || got.Status.StartTime == nil {
		t.Errorf("hostIP %q, startTime %v", got.Status.HostIP, got.Status.StartTime)
	}
	cs := containerStatus(got, "web")
	if cs == nil || !strings.HasPrefix(cs.ContainerID, "containerd://") || cs.State.Running == nil || !cs.Ready {
		t.Fatalf("container status %+v", cs)
	}
	var body string
	waitFor(t, 20*time.Second, func() (err error) {
		body, err = get("http://" + got.Status.PodIP + ":8080/")
		return err
	})
	if strings.TrimSpace(body) != p.Name {
		t.Errorf("GET / answered %q, want the pod's name %q", body, p.Name)
	}
	envDump, err := get("http://" + got.Status.PodIP + ":8080/env")
	if err != nil || !strings.Contains(envDump, "HOSTNAME="+p.Name) {
		t.Errorf("env %q, %v: want HOSTNAME=%s", envDump, err, p.Name)
	}
	events := wantEvents(t, got, "Pulled", "Created", "Started")
	if notes := events["Pulled"]; len(notes) != 1 || notes[0] != `Container image "`+echo+`" already present on machine` {
		t.Errorf("Pulled Events %q", notes)
	}
}

// TestCrashLoopBackOff: a container that keeps failing is restarted at
// once, then waits in CrashLoopBackOff with its last exit in lastState.
func TestCrashLoopBackOff(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("crash", corev1.Container{Name: "main", Image: busybox, Command: []string{"sh", "-c", "echo failing; exit 3"}}))
	got := waitPod(t, p, 60*time.Second, func(p *skiffcorev1.Pod) error {
		cs := containerStatus(p, "main")
		if cs == nil || cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" {
			return fmt.Errorf("container %+v", cs)
		}
		return nil
	})
	cs := containerStatus(got, "main")
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("lastState %+v, want exit 3 (Error)", cs.LastTerminationState)
	}
	if cs.RestartCount < 1 || got.Status.Phase != corev1.PodRunning || condition(got, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("restartCount %d, phase %s, Ready %s", cs.RestartCount, got.Status.Phase, condition(got, corev1.PodReady))
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off 10s restarting failed container=main") {
		t.Errorf("waiting message %q", cs.State.Waiting.Message)
	}
	wantEvents(t, got, "BackOff")
}

// TestOOMKilled: a container that goes over its memory limit is killed by
// the kernel and reported as OOMKilled.
func TestOOMKilled(t *testing.T) {
	n := startNode(t)
	c := corev1.Container{Name: "hog", Image: memhog, Args: []string{"-mb", "200"}}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: mustQuantity("32Mi")}
	p := n.pod("oom", c)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	got := waitPod(t, create(t, p), 60*time.Second, func(p *skiffcorev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	cs := containerStatus(got, "hog")
	if term := cs.State.Terminated; term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated %+v, want OOMKilled with exit 137", cs.State.Terminated)
	}
}

// TestLivenessProbeRestarts: a container whose liveness probe starts
// failing is killed and restarted.
func TestLivenessProbeRestarts(t *testing.T) {
	n := startNode(t)
	c := echoContainer(corev1.EnvVar{Name: "FAIL_HEALTHZ_AFTER", Value: "3s"})
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		// A timeout well above the period: on a loaded CI machine a 1s
		// probe can time out before the server answers 500, and the
		// test is about the status code.
		PeriodSeconds: 1, FailureThreshold: 2, TimeoutSeconds: 5,
	}
	p := create(t, n.pod("liveness", c))
	got := waitPod(t, p, 90*time.Second, func(p *skiffcorev1.Pod) error {
		if cs := containerStatus(p, "web"); cs == nil || cs.RestartCount < 1 {
			return fmt.Errorf("not restarted yet: %+v", cs)
		}
		return nil
	})
	if last := containerStatus(got, "web").LastTerminationState.Terminated; last == nil {
		t.Errorf("no lastState after a liveness restart")
	}
	wantEvents(t, got, "Unhealthy", "Killing")
	wantEventNote(t, got, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")
}

// TestReadinessGatesReady: the pod is Running but not Ready until its
// readiness probe passes, and turns unready when it fails.
func TestReadinessGatesReady(t *testing.T) {
	n := startNode(t)
	c := corev1.Container{Name: "main", Image: busybox, Command: []string{"sh", "-c", "sleep 3; touch /tmp/ready; sleep 3600"}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
		PeriodSeconds: 1,
	}
	p := create(t, n.pod("ready", c))
	notReady := waitPod(t, p, 60*time.Second, func(p *skiffcorev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	if cs := containerStatus(notReady, "main"); condition(notReady, corev1.PodReady) != corev1.ConditionFalse || cs.Ready {
		t.Errorf("Running before /tmp/ready exists: Ready %s, container ready %v; want not ready", condition(notReady, corev1.PodReady), cs.Ready)
	}
	waitPod(t, p, 30*time.Second, running)
}

// TestGracefulStop: deleting a pod gives its container SIGTERM and the
// grace period: a container that needs 2s after SIGTERM gets them, and
// the pod object goes once it stopped.
func TestGracefulStop(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("graceful", echoContainer(corev1.EnvVar{Name: "TERM_DELAY", Value: "2s"})))
	waitPod(t, p, 60*time.Second, running)
	start := time.Now()
	if err := env.Client.Delete(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() error { return gone(p) })
	took := time.Since(start)
	if took < 2*time.Second || took > 5*time.Second {
		t.Errorf("deleting took %s; want the container's 2s after SIGTERM, well within the 5s grace period", took)
	}
}

// TestAdoptionAfterAgentRestart: an agent that restarts finds the pod's
// container running and keeps it: same container, same start, no restart.
func TestAdoptionAfterAgentRestart(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("adopt", echoContainer()))
	before := containerStatus(waitPod(t, p, 60*time.Second, running), "web")
	n.restart(t)
	time.Sleep(3 * time.Second)
	after := containerStatus(waitPod(t, p, 30*time.Second, running), "web")
	if after.ContainerID != before.ContainerID || after.RestartCount != 0 || !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
		t.Errorf("after the agent restarted: %+v; want the same running container as %+v", after, before)
	}
}

// TestPodDeletedWhileAgentDownIsCleanedUp: the containers of a pod deleted
// while no agent ran are removed when the agent comes back.
func TestPodDeletedWhileAgentDownIsCleanedUp(t *testing.T) {
	n := startNode(t)
	p := create(t, n.pod("orphan", echoContainer()))
	waitPod(t, p, 60*time.Second, running)
	n.stop()
	// With no agent, the finalizer must go by hand, as pod GC does for a
	// vanished node.
	got := &skiffcorev1.Pod{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), got); err != nil {
		t.Fatal(err)
	}
	got.Finalizers = nil
	if err := env.Client.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	_ = n.runtime.Close()
	n.start(t)
	waitFor(t, 30*time.Second, func() error {
		left, err := n.runtime.ListPods(context.Background())
		if err != nil || len(left) != 0 {
			return fmt.Errorf("containers left: %+v %v", left, err)
		}
		return nil
	})
}

// TestConfigMapUpdateReachesRunningPod: a configMap volume follows its
// ConfigMap while the pod runs.
func TestConfigMapUpdateReachesRunningPod(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	cm := &corev1.ConfigMap{Data: map[string]string{"greeting": "hello"}}
	cm.Namespace, cm.Name = "default", "greeting-"+randomHex(2)
	if err := env.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	c := corev1.Container{Name: "main", Image: busybox, Command: []string{"sh", "-c", "while true; do cat /config/greeting; echo; sleep 0.5; done"},
		VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/config"}}}
	p := n.pod("config", c)
	p.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}}}
	got := waitPod(t, create(t, p), 60*time.Second, running)
	waitFor(t, 20*time.Second, func() error { return logContains(n, got, "main", "hello") })
	cm.Data["greeting"] = "bonjour"
	if err := env.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error { return logContains(n, got, "main", "bonjour") })
}
