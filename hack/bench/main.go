// Command bench runs skiff's scale benchmarks against a real kube-apiserver
// and etcd, with the real manager and node agent binaries as separate
// processes so that their CPU and memory can be measured, and prints each
// scenario's figures as a Markdown table. `make bench` runs it after the Go
// benchmarks.
//
// Usage: go run ./hack/bench [-scenario scale|rollout|pods|services] [-nodes N] [-pods N] [-replicas N] [-requests N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// options are the settings every scenario shares.
type options struct {
	bin      string
	nodes    int
	pods     int
	replicas int
	workers  int
	requests int
	timeout  time.Duration
}

// scenarios are the benchmarks by name, each printing its own table.
var scenarios = map[string]func(context.Context, options) (table, error){
	"scale":    runScale,
	"rollout":  runRollout,
	"pods":     runPods,
	"services": runServices,
}

func main() {
	var o options
	scenario := flag.String("scenario", "scale", "which benchmark to run")
	flag.StringVar(&o.bin, "bin", "bin", "where kube-apiserver, etcd, manager and nodeagent are")
	flag.IntVar(&o.nodes, "nodes", 1000, "simulated nodes")
	flag.IntVar(&o.pods, "pods", 10000, "pods, created through ReplicaSets")
	flag.IntVar(&o.replicas, "replicas", 1000, "pods per ReplicaSet (scale) or in the Deployment (rollout)")
	flag.IntVar(&o.workers, "workers", 16, "concurrent writers for the raw apiserver rate (the scheduler's bind workers)")
	flag.IntVar(&o.requests, "requests", 5000, "connect+GET requests per path (services)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "how long a scenario may take")
	flag.Parse()
	if *scenario == "backend" {
		// The services scenario's backend, run inside its network namespace.
		if err := serveBackend(); err != nil {
			fmt.Fprintln(os.Stderr, "bench backend:", err)
			os.Exit(1)
		}
		return
	}

	run, ok := scenarios[*scenario]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown scenario %q\n", *scenario)
		os.Exit(2)
	}
	// The benchmark's own informers log only their errors.
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	t, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	t.print(os.Stdout)
}

// table is one scenario's figures.
type table struct {
	title string
	rows  [][2]string
}

func (t *table) add(figure, format string, args ...any) {
	t.rows = append(t.rows, [2]string{figure, fmt.Sprintf(format, args...)})
}

func (t table) print(w *os.File) {
	fmt.Fprintf(w, "\n### %s\n\n| figure | value |\n|---|---|\n", t.title)
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s | %s |\n", r[0], r[1])
	}
}
