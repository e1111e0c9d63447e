// Command manager is skiff's control plane: one controller-runtime manager
// holding the scheduler and every controller, with leader election so that
// only one copy acts at a time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ctrl "sigs.k8s.io/controller-runtime"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/controllers"
)

// flags are the manager's command-line settings. --kubeconfig is registered
// by controller-runtime itself.
type flags struct {
	metricsAddr             string
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	zap                     zap.Options
}

func parseFlags() *flags {
	f := bindFlags(flag.CommandLine)
	flag.Parse()
	return f
}

// bindFlags registers the manager's flags on fs, with their defaults; the
// values appear in the returned flags once fs is parsed.
func bindFlags(fs *flag.FlagSet) *flags {
	f := &flags{}
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address the /metrics endpoint binds to; 0 disables it")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "address the /healthz and /readyz endpoints bind to")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader so that only one manager acts at a time")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease; defaults to the pod's namespace when in a cluster")
	f.zap.BindFlags(fs)
	return f
}

func main() {
	f := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "manager: finding the cluster: %v (pass --kubeconfig or set KUBECONFIG)\n", err)
		os.Exit(1)
	}
	if err := run(ctrl.SetupSignalHandler(), cfg, f); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// run starts the manager and blocks until ctx ends.
func run(ctx context.Context, cfg *rest.Config, f *flags) error {
	log := ctrl.Log.WithName("setup")
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  api.NewScheme(),
		Metrics:                 metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "manager.skiff.dev",
		LeaderElectionNamespace: f.leaderElectionNamespace,
		// A manager that loses its lease exits at once, so that two managers
		// never act together; its restart rejoins the election.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, controllers.Options{}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting the manager", "controllers", controllers.Names())
	go func() {
		select {
		case <-mgr.Elected():
			log.Info("elected leader: controllers are running")
		case <-ctx.Done():
		}
	}()
	return mgr.Start(ctx)
}
