package prober

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// probeTCP connects to the port: a connection is success, and closing it is
// all the container sees.
func probeTCP(ctx context.Context, a *corev1.TCPSocketAction, c *corev1.Container, podIP string, timeout time.Duration) (Result, string) {
	port, err := resolvePort(a.Port, c)
	if err != nil {
		return Unknown, "tcpSocket probe: " + err.Error()
	}
	host, err := probeHost(a.Host, podIP)
	if err != nil {
		return Unknown, "tcpSocket probe: " + err.Error()
	}
	conn, err := probeDialer(timeout).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error()
	}
	_ = conn.Close()
	return Success, ""
}

// probeDialer dials the probes' connections (timeout 0: the context's
// deadline bounds the dial). Closing with a linger of one
// second resets the connection instead of leaving it in TIME_WAIT, as the
// kubelet does: probes every few seconds would otherwise use up the node's
// ephemeral ports.
func probeDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}
