package prober

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
)

// probeGRPC asks the pod's grpc.health.v1.Health service for the probe's
// service: SERVING is success, any other answer or none a failure.
func probeGRPC(ctx context.Context, a *corev1.GRPCAction, podIP string, timeout time.Duration) (Result, string) {
	if a.Port <= 0 || a.Port >= 65536 {
		return Unknown, fmt.Sprintf("grpc probe: invalid port number %d: must be 1-65535", a.Port)
	}
	host, err := probeHost("", podIP)
	if err != nil {
		return Unknown, "grpc probe: " + err.Error()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(a.Port)))
	// passthrough: the address is an IP and port, with nothing to resolve.
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent(UserAgent),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return probeDialer(timeout).DialContext(ctx, "tcp", addr)
		}),
	)
	if err != nil {
		return Unknown, fmt.Sprintf("grpc probe: %v", err)
	}
	defer conn.Close()
	service := ""
	if a.Service != nil {
		service = *a.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return Failure, grpcFailure(err, addr, timeout)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Failure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return Success, "service healthy"
}

// grpcFailure explains a failed health check in the kubelet's words.
func grpcFailure(err error, addr string, timeout time.Duration) string {
	switch status.Code(err) {
	case codes.Unimplemented:
		return fmt.Sprintf("this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", status.Convert(err).Message())
	case codes.DeadlineExceeded:
		return fmt.Sprintf("timeout: health rpc did not complete within %v", timeout)
	case codes.Unavailable:
		return fmt.Sprintf("error: failed to connect service at %q: %s", addr, status.Convert(err).Message())
	}
	return fmt.Sprintf("error: health rpc probe failed: %v", err)
}
