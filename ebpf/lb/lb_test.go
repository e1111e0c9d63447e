package lb_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"skiff.dev/skiff/ebpf/lb"
)

var (
	vip     = netip.MustParseAddr("10.99.0.10")
	vipPort = uint16(80)
	vipTCP  = netip.AddrPortFrom(vip, vipPort).String()
)

// connectsUntilAllSeen dials addr until every backend answered once.
func connectsUntilAllSeen(t *testing.T, network, addr string, backends []backend) {
	t.Helper()
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < len(backends); i++ {
		seen[mustDial(t, network, addr)] = true
	}
	for _, b := range backends {
		if !seen[b.name] {
			t.Errorf("%s was never chosen in 200 connections to %s (saw %v)", b.name, addr, seen)
		}
	}
}

func TestTCPBalancesOverEveryBackend(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 3)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends)}); err != nil {
		t.Fatal(err)
	}
	connectsUntilAllSeen(t, "tcp4", vipTCP, backends)

	c, err := dial(t, "tcp4", vipTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.echo(t)
	if got, want := peerName(t, c.Conn), netip.AddrPortFrom(vip, vipPort); got != want {
		t.Errorf("getpeername = %s, want the VIP %s", got, want)
	}
	counters, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if counters.Translated < 4 {
		t.Errorf("Translated counter = %d after at least 4 connections", counters.Translated)
	}
}

func TestIPv4MappedVIPOverTCP6(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 2)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends)}); err != nil {
		t.Fatal(err)
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(vip.As16()), vipPort).String()
	connectsUntilAllSeen(t, "tcp6", mapped, backends)

	c, err := dial(t, "tcp6", mapped)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := peerName(t, c.Conn).String(); got != mapped {
		t.Errorf("getpeername on the tcp6 socket = %s, want %s", got, mapped)
	}
}

func TestIPv6Service(t *testing.T) {
	d := attach(t)
	backends := startBackendsOn(t, "::1", 2)
	vip6 := netip.MustParseAddr("fd00:99::10")
	if err := d.SetService(lb.Service{VIP: vip6, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends)}); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(vip6, vipPort).String()
	connectsUntilAllSeen(t, "tcp6", addr, backends)
	if _, err := dial(t, "tcp6", "[fd00:99::99]:80"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial an unknown address in the IPv6 service CIDR = %v, want ECONNREFUSED", err)
	}
}

func TestRemoveDetaches(t *testing.T) {
	d := attach(t)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(startBackends(t, 1))}); err != nil {
		t.Fatal(err)
	}
	mustDial(t, "tcp4", vipTCP)
	if err := d.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if n := attachedPrograms(t, d.Cgroup, ebpf.AttachCGroupInet4Connect); n != 0 {
		t.Errorf("%d connect4 programs still attached after Remove", n)
	}
	pins, err := os.ReadDir(d.PinDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range pins {
		if !strings.HasSuffix(pin.Name(), ".debug") { // the bpffs's own files
			t.Errorf("pin %s left after Remove", pin.Name())
		}
	}
}

func TestUDPRepliesComeFromTheVIP(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 2)
	if err := d.SetService(lb.Service{VIP: vip, Port: 53, Proto: lb.UDP, Backends: udpAddrs(backends)}); err != nil {
		t.Fatal(err)
	}
	vipUDP := net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53))

	// Unconnected: sendmsg picks the backend, recvmsg shows the VIP.
	pc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := pc.WriteToUDP([]byte("hello"), vipUDP); err != nil {
		t.Fatalf("sendto the VIP: %v", err)
	}
	buf := make([]byte, 100)
	n, from, err := pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no reply from the VIP: %v", err)
	}
	if from != netip.AddrPortFrom(vip, 53) {
		t.Errorf("reply source = %s, want the VIP %s", from, vipUDP)
	}
	if !strings.HasSuffix(string(buf[:n]), " hello") {
		t.Errorf("reply = %q, want a backend's echo of hello", buf[:n])
	}

	// Connected: connect picks the backend, recvmsg and getpeername show the VIP.
	cc, err := net.DialUDP("udp4", nil, vipUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := cc.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, from, err := cc.ReadFromUDPAddrPort(buf); err != nil || from != netip.AddrPortFrom(vip, 53) {
		t.Errorf("connected reply source = %s, %v; want the VIP", from, err)
	}
	if got := peerName(t, cc); got != netip.AddrPortFrom(vip, 53) {
		t.Errorf("getpeername on the connected UDP socket = %s, want the VIP", got)
	}
}

func TestRefusals(t *testing.T) {
	d := attach(t)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, network, addr string
	}{
		{"a service without backends", "tcp4", vipTCP},
		{"an unknown port on a service VIP", "tcp4", "10.99.0.10:81"},
		{"an unknown address in the service CIDR", "tcp4", "10.99.200.200:80"},
		{"an unknown IPv4-mapped address over tcp6", "tcp6", "[::ffff:10.99.200.200]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := dial(t, tt.network, tt.addr)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial %s = %v, want ECONNREFUSED", tt.addr, err)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("the refusal took %s; it must come from connect() at once", took)
			}
		})
	}

	pc, err := net.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, err = pc.WriteToUDP([]byte("x"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("10.99.200.200:53")))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("sendto an unknown address in the service CIDR = %v, want ECONNREFUSED", err)
	}

	counters, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if counters.NoBackend == 0 || counters.UnknownVIP < 3 {
		t.Errorf("counters = %+v, want refusals counted", counters)
	}
}

func TestClientIPAffinity(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 4)
	svc := lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends), Affinity: time.Hour}
	if err := d.SetService(svc); err != nil {
		t.Fatal(err)
	}
	sticky := mustDial(t, "tcp4", vipTCP)
	for range 20 {
		if got := mustDial(t, "tcp4", vipTCP); got != sticky {
			t.Fatalf("affinity broke: got %s after %s", got, sticky)
		}
	}

	// An endpoint change that keeps the backend keeps the client on it.
	more := startBackends(t, 1)
	svc.Backends = append(svc.Backends, more[0].tcp)
	if err := d.SetService(svc); err != nil {
		t.Fatal(err)
	}
	if got := mustDial(t, "tcp4", vipTCP); got != sticky {
		t.Errorf("after adding a backend the client moved from %s to %s", sticky, got)
	}

	// Once its backend is gone, the client moves and sticks to a new one.
	svc.Backends = slices.DeleteFunc(svc.Backends, func(a netip.AddrPort) bool { return a == backendNamed(backends, sticky).tcp })
	if err := d.SetService(svc); err != nil {
		t.Fatal(err)
	}
	moved := mustDial(t, "tcp4", vipTCP)
	if moved == sticky {
		t.Fatalf("the client still reaches removed backend %s", sticky)
	}
	for range 10 {
		if got := mustDial(t, "tcp4", vipTCP); got != moved {
			t.Fatalf("affinity broke after the move: got %s after %s", got, moved)
		}
	}
}

func TestClientIPAffinityTimesOut(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 8)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends), Affinity: time.Second}); err != nil {
		t.Fatal(err)
	}
	first := mustDial(t, "tcp4", vipTCP)
	// Each round has a 1 in 8 chance to land on the same backend again.
	for range 10 {
		time.Sleep(1100 * time.Millisecond)
		if mustDial(t, "tcp4", vipTCP) != first {
			return
		}
	}
	t.Errorf("the client stayed on %s across 10 affinity timeouts", first)
}

func backendNamed(bs []backend, name string) backend {
	for _, b := range bs {
		if b.name == name {
			return b
		}
	}
	return backend{}
}

func TestRestartKeepsTheDatapath(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 2)
	svc := lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends)}
	if err := d.SetService(svc); err != nil {
		t.Fatal(err)
	}
	udp := lb.Service{VIP: vip, Port: 53, Proto: lb.UDP, Backends: udpAddrs(backends)}
	if err := d.SetService(udp); err != nil {
		t.Fatal(err)
	}
	held, err := dial(t, "tcp4", vipTCP)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldUDP, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 53)))
	if err != nil {
		t.Fatal(err)
	}
	defer heldUDP.Close()

	// The agent goes away: connections and services live on without it.
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	held.echo(t)
	mustDial(t, "tcp4", vipTCP)

	// The restarted agent finds the datapath as it was, attached once.
	d.Reopen(t)
	for _, attach := range []ebpf.AttachType{ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Recvmsg} {
		if n := attachedPrograms(t, d.Cgroup, attach); n != 1 {
			t.Errorf("%d programs attached for %s after the restart, want 1", n, attach)
		}
	}
	got, err := d.Services()
	if err != nil {
		t.Fatal(err)
	}
	want := []lb.Service{withSortedBackends(udp), withSortedBackends(svc)} // sorted by port
	if !slices.EqualFunc(got, want, sameService) {
		t.Errorf("Services() after restart = %v, want %v", got, want)
	}
	held.echo(t)
	heldUDP.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := heldUDP.Write([]byte("still there")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, from, err := heldUDP.ReadFromUDPAddrPort(buf); err != nil || from != netip.AddrPortFrom(vip, 53) {
		t.Errorf("reply on a UDP socket connected before the restart = %s, %v; want one from the VIP", from, err)
	}
	connectsUntilAllSeen(t, "tcp4", vipTCP, backends)
}

func attachedPrograms(t *testing.T, cgroup string, attach ebpf.AttachType) int {
	t.Helper()
	f, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: attach})
	if err != nil {
		t.Fatalf("querying %s programs: %v", attach, err)
	}
	return len(res.Programs)
}

func withSortedBackends(s lb.Service) lb.Service {
	s.Backends = slices.Clone(s.Backends)
	slices.SortFunc(s.Backends, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return s
}

func sameService(a, b lb.Service) bool {
	return a.VIP == b.VIP && a.Port == b.Port && a.Proto == b.Proto && a.Affinity == b.Affinity && slices.Equal(a.Backends, b.Backends)
}

func TestUpdatesNeverBreakConnects(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 4)
	sets := [][]netip.AddrPort{
		tcpAddrs(backends[:2]),
		tcpAddrs(backends[1:]),
		tcpAddrs(backends[3:]),
		tcpAddrs(backends),
	}
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: sets[0]}); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	updated := make(chan int)
	go func() {
		n := 0
		defer func() { updated <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: sets[n%len(sets)]}); err != nil {
				t.Errorf("SetService: %v", err)
				return
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	connects := 0
	for time.Now().Before(deadline) {
		if _, err := dial(t, "tcp4", vipTCP); err != nil {
			t.Errorf("connect %d during updates failed: %v", connects, err)
			break
		}
		connects++
	}
	close(stop)
	if n := <-updated; n < 100 {
		t.Errorf("only %d updates raced %d connects; the test proves little", n, connects)
	}
}
