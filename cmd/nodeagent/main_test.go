package main

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args ...string) *flags {
	t.Helper()
	fs := flag.NewFlagSet("nodeagent", flag.ContinueOnError)
	f := bindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestHostOptionsFromFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr string
		check   func(*testing.T, *flags)
	}{
		{name: "containerd that is not running", args: []string{"--runtime=containerd", "--containerd-address=/nonexistent/containerd.sock", "--root-dir=" + t.TempDir()}, wantErr: "no containerd listens on /nonexistent/containerd.sock"},
		{name: "containerd with simulated nodes", args: []string{"--runtime=containerd", "--simulate=2"}, wantErr: "--simulate needs --runtime=simulated"},
		{name: "an unknown runtime", args: []string{"--runtime=docker"}, wantErr: `unknown runtime "docker"`},
		{name: "a bad reservation", args: []string{"--system-reserved=cpu"}, wantErr: "--system-reserved"},
		{name: "a node CIDR too small", args: []string{"--simulate=5", "--simulate-node-cidr=10.0.0.0/30"}, wantErr: "too small"},
		{name: "simulated nodes", args: []string{"--simulate=3", "--node-name-prefix=edge", "--simulate-cpu=4", "--simulate-memory=8Gi", "--simulate-max-pods=20"}},
		{name: "this machine", args: []string{"--node-name=box", "--node-ip=192.0.2.7", "--system-reserved=cpu=100m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, _, err := hostOptions(parse(t, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.NewRuntime == nil || opts.NewRuntime("x").Version() != "simulated://0.1" {
				t.Error("no simulated runtime")
			}
			switch tc.name {
			case "simulated nodes":
				if len(opts.Nodes) != 3 || opts.Nodes[0].Name != "edge-0000" || opts.Nodes[2].Name != "edge-0002" {
					t.Fatalf("nodes %v, want edge-0000..edge-0002", opts.Nodes)
				}
				n := opts.Nodes[1]
				if n.InternalIP != "10.200.0.2" || n.Capacity.Cpu().String() != "4" || n.Capacity.Memory().String() != "8Gi" ||
					n.Capacity.Pods().String() != "20" || n.InstanceType != "simulated" || len(n.MachineID) != 32 || n.BootID == "" {
					t.Errorf("node %+v", n)
				}
				if opts.Nodes[0].MachineID == opts.Nodes[1].MachineID {
					t.Error("two simulated nodes share a machine ID")
				}
			case "this machine":
				if len(opts.Nodes) != 1 || opts.Nodes[0].Name != "box" || opts.Nodes[0].InternalIP != "192.0.2.7" {
					t.Fatalf("nodes %+v, want box at 192.0.2.7", opts.Nodes)
				}
				n := opts.Nodes[0]
				if n.Capacity.Cpu().Cmp(*n.Allocatable.Cpu()) <= 0 || n.Capacity.Memory().Value() == 0 {
					t.Errorf("capacity %v, allocatable %v: want the host's, minus 100m CPU", n.Capacity, n.Allocatable)
				}
			}
		})
	}
}

func TestDefaultsMatchUpstream(t *testing.T) {
	opts, _, err := hostOptions(parse(t, "--simulate=1"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.LeaseDuration != 40*time.Second || opts.LeaseRenewInterval != 10*time.Second ||
		opts.StatusReportFrequency != 5*time.Minute || opts.StatusUpdateFrequency != 10*time.Second {
		t.Errorf("options %+v, want upstream's lease and status timings", opts)
	}
	if c := opts.Nodes[0].Capacity; c.Pods().Value() != 110 {
		t.Errorf("max pods %s, want 110", c.Pods())
	}
}
