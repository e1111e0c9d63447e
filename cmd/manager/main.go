// Command manager is skiff's control plane: one controller-runtime manager
// holding the scheduler and every controller, with leader election so that
// only one copy acts at a time.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ctrl "sigs.k8s.io/controller-runtime"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/controllers"
	"skiff.dev/skiff/controllers/serviceip"
)

// flags are the manager's command-line settings. --kubeconfig is registered
// by controller-runtime itself.
type flags struct {
	metricsAddr             string
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	qps                     float64
	burst                   int
	controllers             controllers.Options
	zap                     zap.Options
	// manyPerProcess lets several managers run in one process, as the
	// leader-election test does; a real process holds one.
	manyPerProcess bool
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
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "", "address Go's /debug/pprof endpoints bind to; empty disables them")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader so that only one manager acts at a time")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease; defaults to the pod's namespace when in a cluster")
	// client-go's default of 5 requests a second would pace a scheduler
	// binding thousands of pods; upstream's kube-scheduler raises it too.
	fs.Float64Var(&f.qps, "kube-api-qps", 500, "requests a second the manager may send the apiserver")
	fs.IntVar(&f.burst, "kube-api-burst", 1000, "requests the manager may send the apiserver in a burst")
	bindControllerFlags(fs, &f.controllers)
	f.zap.BindFlags(fs)
	return f
}

// bindControllerFlags registers each controller's settings, with upstream's
// defaults where upstream has the same setting.
func bindControllerFlags(fs *flag.FlagSet, o *controllers.Options) {
	fs.Func("controllers", "controllers to run: '*' for all, 'name' to enable one, '-name' to disable one, comma-separated (default '*'; known: "+strings.Join(controllers.Names(), ", ")+")", func(v string) error {
		o.Controllers = strings.Split(v, ",")
		return nil
	})
	fs.StringVar(&o.Scheduler.Scoring, "scheduler-scoring", "LeastAllocated", "how the scheduler scores nodes: LeastAllocated spreads pods, MostAllocated packs them")
	fs.Func("percentage-of-nodes-to-score", "feasible nodes scored per pod, in percent (default: adaptive, as upstream)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("must be a whole number from 0 to 100, got %q", v)
		}
		o.Scheduler.PercentageOfNodesToScore = int32(n)
		return nil
	})
	fs.IntVar(&o.Scheduler.BindWorkers, "bind-workers", 16, "bindings the scheduler may have in flight at once")
	fs.DurationVar(&o.NodeLifecycle.NodeMonitorGracePeriod, "node-monitor-grace-period", 50*time.Second, "how long a node's heartbeat may be missing before it is marked Ready=Unknown")
	fs.Int64Var(&o.NodeLifecycle.DefaultTolerationSeconds, "default-toleration-seconds", 300, "how long pods without their own toleration stay on a not-ready or unreachable node")
	fs.StringVar(&o.NodeIPAM.ClusterCIDR, "cluster-cidr", "10.244.0.0/16", "the range every node's podCIDR is carved from")
	fs.IntVar(&o.NodeIPAM.NodeCIDRMaskSize, "node-cidr-mask-size", 24, "the prefix length of each node's podCIDR")
	fs.StringVar(&o.ServiceIP.ServiceClusterIPRange, "service-cluster-ip-range", serviceip.DefaultClusterIPRange, "the range every Service's cluster IP comes from")
	fs.StringVar(&o.ServiceIP.ServiceNodePortRange, "service-node-port-range", serviceip.DefaultNodePortRange, "the range of node ports, FIRST-LAST")
}

func main() {
	f := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "manager: finding the cluster: %v (pass --kubeconfig or set KUBECONFIG)\n", err)
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
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
		PprofBindAddress:        f.pprofAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "manager.skiff.dev",
		LeaderElectionNamespace: f.leaderElectionNamespace,
		// A manager that loses its lease exits at once, so that two managers
		// never act together; its restart rejoins the election.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(f.manyPerProcess)},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(mgr, f.controllers); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting the manager", "controllers", controllers.Selected(f.controllers))
	go func() {
		select {
		case <-mgr.Elected():
			log.Info("elected leader: controllers are running")
		case <-ctx.Done():
		}
	}()
	return mgr.Start(ctx)
}
