// Command echo is the server in skiff's test image skiff.dev/test/echo: it
// answers with its pod's name, so that a test can tell which pod a Service
// sent it to, and it can be told to fail its health check or to stop slowly,
// so that probes and graceful termination can be tested against a real
// process.
//
// It is configured through the environment, as a pod spec does easily:
//
//	PORT=8080               HTTP: GET / answers POD_NAME, /healthz, /env
//	GRPC_PORT=9090          gRPC health protocol (grpc.health.v1.Health)
//	POD_NAME=web-0          the name to answer with (default: the hostname)
//	FAIL_HEALTHZ_AFTER=5s   /healthz answers 500 from 5s after the start
//	TERM_DELAY=2s           on SIGTERM, exit only 2s later
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	log.SetFlags(0)
	started := time.Now()
	failAfter := durationEnv("FAIL_HEALTHZ_AFTER")
	termDelay := durationEnv("TERM_DELAY")

	grpcLis, err := net.Listen("tcp", ":"+env("GRPC_PORT", "9090"))
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	httpLis, err := net.Listen("tcp", ":"+env("PORT", "8080"))
	if err != nil {
		log.Fatalf("echo: %v", err)
	}

	grpcServer := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcServer, health.NewServer()) // "" is SERVING from the start
	go func() { log.Fatal(grpcServer.Serve(grpcLis)) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, podName())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if failAfter > 0 && time.Since(started) >= failAfter {
			http.Error(w, fmt.Sprintf("unhealthy: FAIL_HEALTHZ_AFTER=%s has passed", failAfter), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, _ *http.Request) {
		vars := os.Environ()
		slices.Sort(vars)
		for _, v := range vars {
			fmt.Fprintln(w, v)
		}
	})
	go func() { log.Fatal(http.Serve(httpLis, mux)) }()
	log.Printf("echo: %s serving HTTP on %s and gRPC health on %s", podName(), httpLis.Addr(), grpcLis.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	sig := <-stop
	// Stopping late on purpose lets a test see the grace period honoured:
	// the runtime must wait for the exit, and kill only after the grace.
	log.Printf("echo: %v, exiting in %s", sig, termDelay)
	time.Sleep(termDelay)
	os.Exit(0)
}

// podName is the name the pod's downward API gives, or the hostname, which
// the runtime sets to the pod's name too.
func podName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// durationEnv reads a duration such as "5s"; a bad value stops the program,
// since a test that sets it relies on it.
func durationEnv(name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		log.Fatalf("echo: %s=%q: want a duration such as 5s: %v", name, v, err)
	}
	return d
}
