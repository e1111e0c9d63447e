package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The kubelet's streaming timeouts: an exec session with no traffic for
// 4 hours is closed (--streaming-connection-idle-timeout); a client has
// 30 s to open its SPDY streams.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// serveExec answers /exec/{namespace}/{pod}/{container}?command=...: over
// SPDY through the kubelet's own server side (what client-go's SPDY
// executor and kubectl speak), or over a WebSocket with the
// v5.channel.k8s.io protocol of client-go's WebSocket executor, which the
// kubelet leaves to the apiserver to translate but an agent called
// directly must speak itself.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request, pod *skiffcorev1.Pod, container string) {
	r.URL.RawQuery, r.Form = kubeletExecQuery(r.URL.Query()).Encode(), nil
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		writeError(w, httpError{http.StatusBadRequest, err.Error()})
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		writeError(w, httpError{http.StatusBadRequest, "no command: pass it as command=<arg>&command=<arg>..."})
		return
	}
	exec := podExecutor{rt: s.cfg.Runtime, pod: pod}
	if wsstream.IsWebSocketRequest(r) {
		serveExecWebSocket(w, r, exec, container, cmd, opts)
		return
	}
	remotecommand.ServeExec(w, r, exec, pod.Name, string(pod.UID), container, cmd, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// kubeletExecQuery turns PodExecOptions' parameters (stdin, stdout,
// stderr, tty, each true or 1), which a client that knows the pods/exec API
// sends, into the kubelet's own (input, output, error, tty, each 1), which
// the apiserver sends the kubelet and which the server side reads.
func kubeletExecQuery(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	for pod, kubelet := range map[string]string{"stdin": remotecommand.ExecStdinParam, "stdout": remotecommand.ExecStdoutParam, "stderr": remotecommand.ExecStderrParam, "tty": remotecommand.ExecTTYParam} {
		for _, name := range []string{pod, kubelet} {
			if on, err := strconv.ParseBool(q.Get(name)); err == nil && on {
				out.Set(kubelet, "1")
			}
		}
		if pod != kubelet {
			out.Del(pod)
		}
	}
	return out
}

// podExecutor runs exec sessions in one pod's containers.
type podExecutor struct {
	rt  Runtime
	pod *skiffcorev1.Pod
}

// ExecInContainer is remotecommand.Executor's, for the SPDY server side.
func (e podExecutor) ExecInContainer(ctx context.Context, _, _, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	return e.rt.Exec(ctx, e.pod, container, cmd, tty, in, out, errOut, resize)
}

// The channels of the WebSocket protocols, numbered as the streams'
// file descriptors, then the error and resize channels.
const (
	stdinChannel = iota
	stdoutChannel
	stderrChannel
	errorChannel
	resizeChannel
)

// serveExecWebSocket runs an exec session over a WebSocket, speaking
// v5.channel.k8s.io (v4 with a signal that closes stdin) or v4.
func serveExecWebSocket(w http.ResponseWriter, r *http.Request, exec podExecutor, container string, cmd []string, opts *remotecommand.Options) {
	channels := []wsstream.ChannelType{
		stdinChannel:  channelType(opts.Stdin, wsstream.ReadChannel),
		stdoutChannel: channelType(opts.Stdout, wsstream.WriteChannel),
		stderrChannel: channelType(opts.Stderr, wsstream.WriteChannel),
		errorChannel:  wsstream.WriteChannel,
		resizeChannel: wsstream.ReadChannel,
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	// The server ends a session by closing the connection, which the
	// client waits for; the connection's reader would log that as an
	// error ("use of closed network connection") on every session.
	quiet := r.WithContext(logr.NewContext(r.Context(), logr.Discard()))
	_, streams, err := conn.Open(w, quiet)
	if err != nil {
		// Open has answered the client already.
		return
	}
	defer conn.Close()
	// An empty message tells the client that the session is open, as the
	// kubelet's WebSocket server does.
	_, _ = streams[firstOutput(opts)].Write(nil)

	var stdin io.Reader
	var stdout, stderr io.WriteCloser
	if opts.Stdin {
		stdin = streams[stdinChannel]
	}
	if opts.Stdout {
		stdout = streams[stdoutChannel]
	}
	if opts.Stderr {
		stderr = streams[stderrChannel]
	}
	var resize chan remotecommand.TerminalSize
	if opts.TTY {
		resize = make(chan remotecommand.TerminalSize)
	}
	sessionDone := make(chan struct{})
	go readResizes(streams[resizeChannel], resize, sessionDone)
	err = exec.ExecInContainer(r.Context(), "", "", container, cmd, stdin, stdout, stderr, opts.TTY, resize, 0)
	close(sessionDone)
	body, _ := json.Marshal(execStatus(err))
	_, _ = streams[errorChannel].Write(body)
}

func channelType(wanted bool, t wsstream.ChannelType) wsstream.ChannelType {
	if wanted {
		return t
	}
	return wsstream.IgnoreChannel
}

// firstOutput is the lowest channel the server writes to.
func firstOutput(opts *remotecommand.Options) int {
	switch {
	case opts.Stdout:
		return stdoutChannel
	case opts.Stderr:
		return stderrChannel
	}
	return errorChannel
}

// readResizes reads the terminal sizes the client sends (JSON
// {"Width":..,"Height":..}) to the stream's end, passing them to resize
// until the session is done.
func readResizes(stream io.Reader, resize chan<- remotecommand.TerminalSize, sessionDone <-chan struct{}) {
	dec := json.NewDecoder(stream)
	for {
		var size remotecommand.TerminalSize
		if err := dec.Decode(&size); err != nil {
			return
		}
		select {
		case resize <- size:
		case <-sessionDone:
		}
	}
}

// execStatus is the status a session ends with on the error channel, as
// the kubelet writes it: success, a non-zero exit code as a cause that
// client-go turns into an exec.CodeExitError, or an internal error.
func execStatus(err error) metav1.Status {
	if err == nil {
		return metav1.Status{Status: metav1.StatusSuccess}
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return metav1.Status{
			Status:  metav1.StatusFailure,
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", err),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type:    remotecommand.ExitCodeCauseType,
				Message: fmt.Sprint(exit.ExitStatus()),
			}}},
		}
	}
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Reason:  metav1.StatusReasonInternalError,
		Code:    http.StatusInternalServerError,
		Message: fmt.Sprintf("Internal error occurred: error executing command in container: %v", err),
	}
}
