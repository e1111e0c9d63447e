package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/ebpf/lb"
)

// The services scenario's addresses: a backend in a network namespace of
// its own behind a veth, a VIP in the eBPF datapath, and a DNAT address in
// nftables, all made by the scenario on this machine and removed after.
const (
	benchNetns    = "skiff-bench-svc"
	benchHostVeth = "sksvcb0"
	benchNsVeth   = "sksvcb1"
	benchHostAddr = "10.98.255.1/30"
	benchBackend  = "10.98.255.2"
	benchPort     = 8080
	benchVIP      = "10.99.0.1"
	benchDNAT     = "10.97.255.1"
	benchTable    = "skiff_bench"
)

// runServices measures what the eBPF datapath adds to a connection: n
// sequential connect-plus-GET requests on each of three paths, interleaved
// (direct to the backend, through the Service VIP, through an nftables
// DNAT rule as kube-proxy programs), then the same with 10,000 Services
// programmed, and the time to program them.
func runServices(ctx context.Context, o options) (table, error) {
	t := table{title: fmt.Sprintf("Service load balancing: %d connect+GET requests per path, interleaved", o.requests)}
	if os.Geteuid() != 0 {
		return t, errors.New("the services scenario attaches eBPF programs and makes a network namespace: run it as root")
	}
	cleanup, err := backendNamespace(ctx)
	defer cleanup()
	if err != nil {
		return t, err
	}
	dp, detach, err := attachDatapath()
	defer detach()
	if err != nil {
		return t, err
	}
	backend := netip.AddrPortFrom(netip.MustParseAddr(benchBackend), benchPort)
	if err := dp.SetService(lb.Service{VIP: netip.MustParseAddr(benchVIP), Port: 80, Proto: lb.TCP, Backends: []netip.AddrPort{backend}}); err != nil {
		return t, err
	}
	undoNft, err := dnatRule()
	defer undoNft()
	if err != nil {
		return t, err
	}
	paths := []string{net.JoinHostPort(benchBackend, strconv.Itoa(benchPort)), benchVIP + ":80", benchDNAT + ":80"}
	names := []string{"direct to the pod", "Service VIP (eBPF)", "nftables DNAT rules (iptables-mode kube-proxy's way)"}

	if err := measure(ctx, &t, paths, names, o.requests, "1 Service"); err != nil {
		return t, err
	}
	start := time.Now()
	if err := programServices(dp, 10000, backend); err != nil {
		return t, err
	}
	t.add("time to program 10,000 Services into the datapath", "%s", time.Since(start).Round(time.Millisecond))
	if err := measure(ctx, &t, paths, names, o.requests, "10,000 Services in eBPF"); err != nil {
		return t, err
	}
	// Then as many DNAT rules, one per Service, ahead of the measured one,
	// as iptables-mode kube-proxy would have: every new connection on the
	// node walks them, whatever its destination.
	if err := moreDNATRules(10000); err != nil {
		return t, err
	}
	if err := measure(ctx, &t, paths, names, o.requests, "and 10,000 DNAT rules"); err != nil {
		return t, err
	}
	return t, nil
}

// measure times n rounds of one request per path and adds p50/p99 rows,
// as ratios to the first path.
func measure(ctx context.Context, t *table, paths, names []string, n int, label string) error {
	lat := make([][]time.Duration, len(paths))
	for range n {
		for i, addr := range paths {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d, err := connectAndGet(addr)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", names[i], addr, err)
			}
			lat[i] = append(lat[i], d)
		}
	}
	base50, base99 := percentile(lat[0], 50), percentile(lat[0], 99)
	for i := range paths {
		p50, p99 := percentile(lat[i], 50), percentile(lat[i], 99)
		t.add(fmt.Sprintf("%s, %s: p50 / p99", label, names[i]), "%s / %s (×%.2f / ×%.2f)",
			us(p50), us(p99), float64(p50)/float64(base50), float64(p99)/float64(base99))
	}
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

// connectAndGet opens a connection, sends one HTTP/1.0 GET and reads the
// whole answer.
func connectAndGet(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), err
}

// programServices adds n-1 more Services, each with one backend.
func programServices(dp *lb.LoadBalancer, n int, backend netip.AddrPort) error {
	for i := 1; i < n; i++ {
		vip := netip.AddrFrom4([4]byte{10, 99, byte(1 + i/250), byte(1 + i%250)})
		if err := dp.SetService(lb.Service{VIP: vip, Port: 80, Proto: lb.TCP, Backends: []netip.AddrPort{backend}}); err != nil {
			return err
		}
	}
	return nil
}

// backendNamespace makes the backend's network namespace and veth and
// starts an HTTP server in it (this program, re-run with -scenario
// backend).
func backendNamespace(ctx context.Context) (func(), error) {
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	run := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	_ = exec.Command("ip", "netns", "del", benchNetns).Run() // a previous run cut short
	if err := run("netns", "add", benchNetns); err != nil {
		return cleanup, err
	}
	undo = append(undo, func() { _ = exec.Command("ip", "netns", "del", benchNetns).Run() })
	for _, args := range [][]string{
		{"link", "add", benchHostVeth, "type", "veth", "peer", "name", benchNsVeth, "netns", benchNetns},
		{"addr", "add", benchHostAddr, "dev", benchHostVeth},
		{"link", "set", benchHostVeth, "up"},
		{"-n", benchNetns, "addr", "add", benchBackend + "/30", "dev", benchNsVeth},
		{"-n", benchNetns, "link", "set", benchNsVeth, "up"},
		{"-n", benchNetns, "link", "set", "lo", "up"},
		// Replies to a DNATed connection go to the host's own address.
		{"-n", benchNetns, "route", "add", "default", "via", strings.Split(benchHostAddr, "/")[0]},
	} {
		if err := run(args...); err != nil {
			return cleanup, err
		}
	}
	undo = append(undo, func() { _ = exec.Command("ip", "link", "del", benchHostVeth).Run() })
	exe, err := os.Executable()
	if err != nil {
		return cleanup, err
	}
	srv := exec.Command("ip", "netns", "exec", benchNetns, exe, "-scenario", "backend")
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return cleanup, err
	}
	undo = append(undo, func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := net.JoinHostPort(benchBackend, strconv.Itoa(benchPort))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := connectAndGet(addr); err == nil {
			return cleanup, nil
		} else if time.Now().After(deadline) {
			return cleanup, fmt.Errorf("the backend in %s never answered: %w", benchNetns, err)
		}
	}
}

// serveBackend is the backend: an HTTP server answering "ok".
func serveBackend() error {
	return http.ListenAndServe(net.JoinHostPort(benchBackend, strconv.Itoa(benchPort)),
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
}

// attachDatapath loads the datapath into a cgroup of the benchmark's own,
// which the benchmark's process enters: the machine's other processes are
// left alone.
func attachDatapath() (*lb.LoadBalancer, func(), error) {
	var undo []func()
	detach := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	root, err := lb.CgroupRoot()
	if err != nil {
		return nil, detach, err
	}
	cgroup := filepath.Join(root, fmt.Sprintf("skiff-bench-%d", os.Getpid()))
	if err := os.Mkdir(cgroup, 0o755); err != nil {
		return nil, detach, err
	}
	undo = append(undo, func() { _ = os.Remove(cgroup) })
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), pid, 0); err != nil {
		return nil, detach, err
	}
	undo = append(undo, func() { _ = os.WriteFile(filepath.Join(root, "cgroup.procs"), pid, 0) })
	pins, err := os.MkdirTemp("", "skiff-bench-bpf-")
	if err != nil {
		return nil, detach, err
	}
	undo = append(undo, func() { _ = unix.Unmount(pins, 0); _ = os.Remove(pins) })
	dp, err := lb.OpenCgroup(pins, cgroup)
	if err != nil {
		return nil, detach, err
	}
	undo = append(undo, func() { _ = dp.Remove() })
	if err := dp.SetServiceCIDRs(netip.MustParsePrefix("10.99.0.0/16")); err != nil {
		return nil, detach, err
	}
	return dp, detach, nil
}

// moreDNATRules inserts n-1 DNAT rules for other addresses ahead of the
// measured one.
func moreDNATRules(n int) error {
	var b strings.Builder
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "insert rule ip %s output ip daddr 10.97.%d.%d tcp dport 80 dnat to %s:%d\n", benchTable, i/250, 1+i%250, benchBackend, benchPort)
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, out)
	}
	return nil
}

// dnatRule is the kube-proxy path: an nftables DNAT from benchDNAT:80 to
// the backend, for locally made connections.
func dnatRule() (func(), error) {
	rules := fmt.Sprintf(`table ip %s {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr %s tcp dport 80 dnat to %s:%d
	}
}
`, benchTable, benchDNAT, benchBackend, benchPort)
	undo := func() { _ = exec.Command("nft", "delete", "table", "ip", benchTable).Run() }
	undo()
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return undo, fmt.Errorf("nft: %w: %s", err, out)
	}
	return undo, nil
}
