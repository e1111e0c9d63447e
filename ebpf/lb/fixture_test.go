package lb_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/ebpf/lb/lbtest"
)

// The tests attach the datapath to a cgroup of their own and move the test
// process into it, so the rest of the machine never sees their VIPs.
var serviceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16"), netip.MustParsePrefix("fd00:99::/108")}

// attach loads the datapath for one test, attached to a cgroup of the
// test's own, and undoes everything at its end.
func attach(t *testing.T) *lbtest.Datapath {
	t.Helper()
	return lbtest.Attach(t, serviceCIDRs...)
}

// backend is a TCP and UDP server on 127.0.0.1 that answers with its name
// and then echoes.
type backend struct {
	name string
	tcp  netip.AddrPort
	udp  netip.AddrPort
}

func startBackends(t *testing.T, n int) []backend {
	t.Helper()
	return startBackendsOn(t, "127.0.0.1", n)
}

func startBackendsOn(t *testing.T, host string, n int) []backend {
	t.Helper()
	var out []backend
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close(); pc.Close() })
		b := backend{
			// Named by its port: names are unique across calls, so a
			// test that starts backends twice never mistakes one for another.
			name: fmt.Sprintf("backend-%d", ln.Addr().(*net.TCPAddr).Port),
			tcp:  ln.Addr().(*net.TCPAddr).AddrPort(),
			udp:  pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		}
		go serveTCP(ln, b.name)
		go serveUDP(pc, b.name)
		out = append(out, b)
	}
	return out
}

func serveTCP(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fmt.Fprintln(c, name)
			io.Copy(c, c)
		}()
	}
}

func serveUDP(pc net.PacketConn, name string) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte(name+" "+string(buf[:n])), from)
	}
}

func tcpAddrs(bs []backend) []netip.AddrPort {
	var out []netip.AddrPort
	for _, b := range bs {
		out = append(out, b.tcp)
	}
	return out
}

func udpAddrs(bs []backend) []netip.AddrPort {
	var out []netip.AddrPort
	for _, b := range bs {
		out = append(out, b.udp)
	}
	return out
}

// conn is a client connection that has read the backend's greeting.
type conn struct {
	net.Conn
	r       *bufio.Reader
	backend string
}

func dial(t *testing.T, network, addr string) (*conn, error) {
	t.Helper()
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is4In6() {
		return dialMapped(ap)
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return greet(c)
}

// dialMapped connects an IPv6 socket to an IPv4-mapped address, which Go's
// net package always turns into an IPv4 socket or refuses.
func dialMapped(addr netip.AddrPort) (*conn, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "tcp6")
	defer f.Close()
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet6{Addr: addr.Addr().As16(), Port: int(addr.Port())}); err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return greet(c)
}

func greet(c net.Conn) (*conn, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading the greeting from %s: %w", c.RemoteAddr(), err)
	}
	return &conn{Conn: c, r: r, backend: strings.TrimSpace(name)}, nil
}

// mustDial connects and returns the name of the backend that answered.
func mustDial(t *testing.T, network, addr string) string {
	t.Helper()
	c, err := dial(t, network, addr)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	c.Close()
	return c.backend
}

// echo checks that the connection still carries data both ways.
func (c *conn) echo(t *testing.T) {
	t.Helper()
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		t.Fatalf("writing to %s: %v", c.backend, err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo from %s = %q, %v; want ping", c.backend, line, err)
	}
}

// peerName asks the kernel for the socket's peer, through getpeername(2).
func peerName(t *testing.T, c net.Conn) netip.AddrPort {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = unix.Getpeername(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("getpeername: %v", serr)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	t.Fatalf("getpeername returned %T", sa)
	return netip.AddrPort{}
}
