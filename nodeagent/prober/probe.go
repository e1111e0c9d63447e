// Package prober runs a container's liveness, readiness and startup probes
// as the kubelet does: one probe run speaks exec, httpGet, tcpSocket or grpc
// to the container (Probe), and a Manager runs each probe every period and
// turns the run of results into the verdicts the runtime acts on (ready,
// started, must restart), with the probe's thresholds.
package prober

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// UserAgent is what HTTP and gRPC probes say they are, as the kubelet's
// "kube-probe/<major>.<minor>" does, so that applications which recognise
// probes (to skip logging them, say) recognise skiff's. The version follows
// nodeagent.KubeletVersion.
const UserAgent = "kube-probe/1.37"

// maxOutput bounds what a probe keeps of a command's output or a response
// body, as the kubelet's 10 KiB: a probe's message goes into an event, and a
// chatty container must not fill the agent's memory.
const maxOutput = 10 << 10

// Result is what one probe run says of a container.
type Result int

const (
	// Unknown: the probe could not be run (no pod IP yet, a port name the
	// container does not have, the runtime could not exec); the result is
	// thrown away and does not count towards a threshold.
	Unknown Result = iota
	// Success: the container answered as healthy.
	Success
	// Warning counts as Success, but something deserves an event: an HTTP
	// probe stopped at a redirect to another host.
	Warning
	// Failure: the container answered as unhealthy, or not in time.
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Warning:
		return "Warning"
	case Failure:
		return "Failure"
	default:
		return "Unknown"
	}
}

// Execer runs a probe's command inside a container. The containerd runtime
// implements it with a task exec; the prober does not know containerd.
type Execer interface {
	// ExecProbe runs cmd in the container and returns its exit code and its
	// output (stdout and stderr together). It must return by timeout (ctx
	// carries the same deadline), with an error that is
	// context.DeadlineExceeded, or wraps it, when the command ran out of
	// time; any other error means the command could not be run.
	ExecProbe(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (exitCode int, output []byte, err error)
}

// Target is where a probe goes: the pod's address for network probes, the
// container for exec probes.
type Target struct {
	// PodIP is the host of httpGet (unless it names one), tcpSocket (likewise)
	// and grpc probes.
	PodIP string
	// ContainerID and Execer run exec probes.
	ContainerID string
	Execer      Execer
}

// Probe runs p once against the container c (whose ports name the probe's
// port when it is a name) and says what it found, with a message that
// explains a failure in the kubelet's words, e.g. "HTTP probe failed with
// statuscode: 500". ctx cancels the run; the probe's own timeoutSeconds
// bounds it.
func Probe(ctx context.Context, p *corev1.Probe, c *corev1.Container, target Target) (Result, string) {
	timeout := time.Duration(defaulted(p.TimeoutSeconds, 1)) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := p.ProbeHandler
	switch {
	case h.Exec != nil:
		return probeExec(ctx, h.Exec.Command, target, timeout)
	case h.HTTPGet != nil:
		return probeHTTP(ctx, h.HTTPGet, c, target.PodIP, timeout)
	case h.TCPSocket != nil:
		return probeTCP(ctx, h.TCPSocket, c, target.PodIP, timeout)
	case h.GRPC != nil:
		return probeGRPC(ctx, h.GRPC, target.PodIP, timeout)
	}
	return Unknown, "probe has no handler: set one of exec, httpGet, tcpSocket or grpc"
}

// resolvePort turns a probe's port, a number or the name of one of the
// container's ports, into a number, as the kubelet does (a name that is not
// a port but reads as a number is taken as that number).
func resolvePort(port intstr.IntOrString, c *corev1.Container) (int, error) {
	n := port.IntValue()
	if port.Type == intstr.String {
		var found bool
		n, found = namedPort(c, port.StrVal)
		if !found {
			var err error
			if n, err = strconv.Atoi(port.StrVal); err != nil {
				return 0, fmt.Errorf("port %q not found: name one of the container's ports or give a number", port.StrVal)
			}
		}
	}
	if n <= 0 || n >= 65536 {
		return 0, fmt.Errorf("invalid port number %d: must be 1-65535", n)
	}
	return n, nil
}

func namedPort(c *corev1.Container, name string) (int, bool) {
	if c == nil {
		return 0, false
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort), true
		}
	}
	return 0, false
}

// probeHost is the host a network probe goes to: the one it names, or the
// pod's IP.
func probeHost(named, podIP string) (string, error) {
	if named != "" {
		return named, nil
	}
	if podIP == "" {
		return "", fmt.Errorf("pod has no IP yet and the probe names no host")
	}
	return podIP, nil
}

// defaulted is v, or def when v is unset (0): skiff's Pod CRD does not run
// the API server's defaulting of probe fields.
func defaulted(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}
