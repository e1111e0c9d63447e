package nodeport

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/hosttest"
)

// The test builds a small world around the host: an "outside" network
// namespace whose client talks to the host over a veth, and a "pod" network
// namespace behind another veth that runs the backends.
const (
	hostOutside = "10.98.0.1" // the node address the outside client targets
	outside     = "10.98.0.2"
	hostPod     = "10.98.0.5" // the node's address towards the pod
	pod         = "10.98.0.6"
)

func TestExternalTrafficReachesABackend(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "nft")
	hosttest.RequireCommand(t, "ip")
	outsideNS := netns(t, "outside", hostOutside, outside)
	podNS := netns(t, "pod", hostPod, pod)

	var tcp []netip.AddrPort
	for _, name := range []string{"backend-a", "backend-b"} {
		tcp = append(tcp, inNetns(t, podNS, func() netip.AddrPort { return serveTCP(t, name) }))
	}
	udp := inNetns(t, podNS, func() netip.AddrPort { return serveUDP(t) })

	table := fmt.Sprintf("skiff_nodeport_test_%d", os.Getpid())
	t.Cleanup(func() {
		if err := Delete(table); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	err := Sync(table, []NodePort{
		{Port: 32701, Proto: unix.IPPROTO_TCP, Backends: tcp},
		{Port: 32702, Proto: unix.IPPROTO_UDP, Backends: []netip.AddrPort{udp}},
		{Port: 32703, Proto: unix.IPPROTO_TCP},
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("TCP reaches every backend, masqueraded", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 100 && len(seen) < len(tcp); i++ {
			greeting := inNetns(t, outsideNS, func() string { return dialGreeting(t, hostOutside+":32701") })
			name, peer, _ := strings.Cut(greeting, " ")
			seen[name] = true
			// The backend sees the node, so that its replies come back
			// through the node even when it lives on another one.
			if host, _, _ := net.SplitHostPort(peer); host != hostPod {
				t.Fatalf("the backend saw the client as %s, want the node's address %s", peer, hostPod)
			}
		}
		if len(seen) != len(tcp) {
			t.Errorf("backends reached = %v, want both", seen)
		}
	})

	t.Run("the node itself reaches a backend through its own address", func(t *testing.T) {
		greeting := dialGreeting(t, hostOutside+":32701")
		name, peer, _ := strings.Cut(greeting, " ")
		if host, _, _ := net.SplitHostPort(peer); !strings.HasPrefix(name, "backend-") || host != hostPod {
			t.Errorf("greeting %q: want a backend that saw the node's address %s", greeting, hostPod)
		}
	})

	t.Run("UDP replies come from the node port", func(t *testing.T) {
		inNetns(t, outsideNS, func() struct{} {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			nodePort := netip.MustParseAddrPort(hostOutside + ":32702")
			if _, err := c.WriteToUDPAddrPort([]byte("hello"), nodePort); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("no reply through the node port: %v", err)
			}
			if from != nodePort || string(buf[:n]) != "hello" {
				t.Errorf("reply %q from %s, want hello from %s", buf[:n], from, nodePort)
			}
			return struct{}{}
		})
	})

	t.Run("a node port without backends refuses", func(t *testing.T) {
		err := inNetns(t, outsideNS, func() error {
			_, err := net.DialTimeout("tcp4", hostOutside+":32703", 5*time.Second)
			return err
		})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial = %v, want ECONNREFUSED", err)
		}
	})
}

// netns creates a network namespace linked to the host by a veth pair, with
// the host end at hostAddr/30 and the namespace routing through it.
func netns(t *testing.T, role, hostAddr, nsAddr string) string {
	t.Helper()
	name := fmt.Sprintf("sknp-%s-%d", role, os.Getpid())
	veth := fmt.Sprintf("sknp%c%d", role[0], os.Getpid()%100000)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { run(t, "ip", "netns", "del", name) })
	run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	run(t, "ip", "addr", "add", hostAddr+"/30", "dev", veth)
	run(t, "ip", "link", "set", veth, "up")
	run(t, "ip", "-n", name, "addr", "add", nsAddr+"/30", "dev", "eth0")
	run(t, "ip", "-n", name, "link", "set", "eth0", "up")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "-n", name, "route", "add", "default", "via", hostAddr)
	return name
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on a thread inside the named network namespace. Sockets
// created there stay in it after fn returns.
func inNetns[T any](t *testing.T, name string, fn func() T) T {
	t.Helper()
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	ns, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("entering netns %s: %v", name, err)
	}
	defer func() {
		// A thread that cannot go home stays locked and dies with its goroutine.
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// serveTCP answers every connection with its name and the peer it sees.
func serveTCP(t *testing.T, name string) netip.AddrPort {
	ln, err := net.Listen("tcp4", pod+":0")
	if err != nil {
		t.Fatal(err)
	}
	hosttest.Serve(t, ln, func(c net.Conn) string { return fmt.Sprintf("%s %s", name, c.RemoteAddr()) })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// serveUDP echoes datagrams.
func serveUDP(t *testing.T) netip.AddrPort {
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(pod+":0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func dialGreeting(t *testing.T, addr string) string {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}
