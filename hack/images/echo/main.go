// Command echo is the server in skiff's test image skiff.dev/test/echo: it
// answers with its pod's name, so that a test can tell which pod a Service
// sent it to, and it can be told to fail its health check or to stop slowly,
// so that probes and graceful termination can be tested against a real
// process.
//
// It is configured through the environment, as a pod spec does easily:
//
//	PORT=8080               HTTP: GET / answers POD_NAME, /healthz, /env, and
//	                        /remote the client's address as the server sees it
//	UDP_PORT=8081           UDP: each datagram is answered with POD_NAME
//	GRPC_PORT=9090          gRPC health protocol (grpc.health.v1.Health)
//	POD_NAME=web-0          the name to answer with (default: the hostname)
//	FAIL_HEALTHZ_AFTER=5s   /healthz answers 500 from 5s after the start
//	TERM_DELAY=2s           on SIGTERM, exit only 2s later
//
// Busybox's nc speaks TCP only, so the program is also the UDP client of
// the tests: `/echo udp HOST:PORT` sends one datagram and prints the answer.
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
	if len(os.Args) == 3 && os.Args[1] == "udp" {
		if err := askUDP(os.Args[2], 2*time.Second); err != nil {
			log.Fatalf("echo udp: %v", err)
		}
		return
	}
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

	udpConn, err := net.ListenPacket("udp", ":"+env("UDP_PORT", "8081"))
	if err != nil {
		log.Fatalf("echo: %v", err)
	}
	go serveUDP(udpConn)

	grpcServer := grpc.NewServer()
	healthpb.RegisterHealthServer(grpcServer, health.NewServer()) // "" is SERVING from the start
	go func() { log.Fatal(grpcServer.Serve(grpcLis)) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, podName())
	})
	// A test of the pod network checks here that no NAT rewrote the
	// client's address on the way.
	mux.HandleFunc("GET /remote", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, r.RemoteAddr)
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
	log.Printf("echo: %s serving HTTP on %s, UDP on %s and gRPC health on %s", podName(), httpLis.Addr(), udpConn.LocalAddr(), grpcLis.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	sig := <-stop
	// Stopping late on purpose lets a test see the grace period honoured:
	// the runtime must wait for the exit, and kill only after the grace.
	log.Printf("echo: %v, exiting in %s", sig, termDelay)
	time.Sleep(termDelay)
	os.Exit(0)
}

// serveUDP answers every datagram with the pod's name, so that a test can
// tell which pod a Service sent it to.
func serveUDP(conn net.PacketConn) {
	buf := make([]byte, 64*1024)
	for {
		_, from, err := conn.ReadFrom(buf)
		if err != nil {
			log.Fatalf("echo: udp: %v", err)
		}
		if _, err := conn.WriteTo([]byte(podName()+"\n"), from); err != nil {
			log.Printf("echo: udp reply to %s: %v", from, err)
		}
	}
}

// askUDP sends one datagram to addr and prints the answer, waiting at most
// timeout for it.
func askUDP(addr string, timeout time.Duration) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		return err
	}
	buf := make([]byte, 64*1024)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(buf[:n])
	return err
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
