package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"skiff.dev/skiff/internal/uptest"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.RunSuite(m, "manager", &env)
}

// startManager runs a manager in the background with free ports and returns
// its probe address and a function that stops it and reports run's error.
func startManager(t *testing.T, args ...string) (probeAddr, metricsAddr string, stop func() error) {
	t.Helper()
	probeAddr, metricsAddr = freeAddr(t), freeAddr(t)
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	f := bindFlags(fs)
	args = append([]string{"--health-probe-bind-address=" + probeAddr, "--metrics-bind-address=" + metricsAddr}, args...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	f.manyPerProcess = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := run(ctx, env.Config, f)
		if ctx.Err() == nil {
			t.Errorf("the manager exited on its own: %v", err)
		}
		done <- err
	}()
	return probeAddr, metricsAddr, func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the manager did not stop within 30s of its context ending")
		}
	}
}

func TestManagerServesHealthAndMetrics(t *testing.T) {
	probe, metrics, stop := startManager(t)
	for _, url := range []string{"http://" + probe + "/healthz", "http://" + probe + "/readyz"} {
		testenv.Eventually(t, 20*time.Second, func() error { _, err := get(url); return err })
	}
	// The controllers' reconcile metrics and the scheduler's appear once
	// each has started.
	series := []string{"rest_client_requests_total", "controller_runtime_reconcile_total", "workqueue_adds_total",
		`scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}`,
		`scheduler_scheduling_attempt_duration_seconds`, `scheduler_pending_pods{queue="active"}`}
	testenv.Eventually(t, 60*time.Second, func() error {
		if missing, err := testenv.MissingSeries("http://"+metrics+"/metrics", series...); len(missing) > 0 {
			return fmt.Errorf("/metrics lacks %v (%v)", missing, err)
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("the manager stopped with an error: %v", err)
	}
}

// TestLeaderElectionHandsOver runs two managers: one holds the Lease, and
// when it stops the other takes over.
func TestLeaderElectionHandsOver(t *testing.T) {
	args := []string{"--leader-elect", "--leader-election-namespace=default"}
	_, _, stopFirst := startManager(t, args...)
	first := eventuallyHolder(t, "")
	_, _, stopSecond := startManager(t, args...)
	defer func() { _ = stopSecond() }()
	if err := stopFirst(); err != nil {
		t.Fatalf("the first manager stopped with an error: %v", err)
	}
	second := eventuallyHolder(t, first)
	if second == first {
		t.Fatalf("the lease stayed with %s", first)
	}
}

// eventuallyHolder waits for the leader Lease to be held by someone other
// than not, and returns the holder.
func eventuallyHolder(t *testing.T, not string) string {
	t.Helper()
	var holder string
	testenv.Eventually(t, 30*time.Second, func() error {
		var lease coordinationv1.Lease
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "manager.skiff.dev"}, &lease); err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" || *lease.Spec.HolderIdentity == not {
			return fmt.Errorf("lease held by %v", lease.Spec.HolderIdentity)
		}
		holder = *lease.Spec.HolderIdentity
		return nil
	})
	return holder
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := uptest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}
