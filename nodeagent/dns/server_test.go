package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	clusterdns "skiff.dev/skiff/nodeagent/dns"
)

// staticSource is a Source whose snapshot a test replaces at will.
type staticSource struct {
	mu   sync.Mutex
	snap *clusterdns.Snapshot
}

func (s *staticSource) Snapshot(context.Context) (*clusterdns.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap, nil
}

func (s *staticSource) set(snap *clusterdns.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
}

// startServer runs a cluster DNS server on a free port of 127.0.0.1 until
// the test ends. Its refresh interval is an hour, so that only Changed
// rebuilds its zone.
func startServer(t *testing.T, src clusterdns.Source, upstream ...string) *clusterdns.Server {
	t.Helper()
	srv, err := clusterdns.New(clusterdns.Config{
		Addr: "127.0.0.1:0", Source: src, Upstream: upstream, Refresh: time.Hour, ForwardTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the cluster DNS server", srv.Start)
	return srv
}

// query asks addr one question over network (udp or tcp).
func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	var (
		resp *dns.Msg
		err  error
	)
	// The server binds in New but serves once Start runs; a refused
	// first try over TCP (or a lost UDP packet) is that moment.
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, _, err = c.Exchange(m, addr)
		return err
	})
	return resp
}

func TestServerAnswersOverUDPAndTCP(t *testing.T) {
	srv := startServer(t, &staticSource{snap: shop()})
	if host, _, _ := net.SplitHostPort(srv.Addr()); host != "127.0.0.1" {
		t.Fatalf("Addr() = %s, want 127.0.0.1 with the port it picked", srv.Addr())
	}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			resp := query(t, network, srv.Addr(), "web.shop.svc.cluster.local.", dns.TypeA)
			if got := short(resp.Answer); resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || !slices.Equal(got, []string{"A 10.96.0.20"}) {
				t.Errorf("web over %s = %s aa=%v %q, want an authoritative A 10.96.0.20", network, dns.RcodeToString[resp.Rcode], resp.Authoritative, got)
			}
			resp = query(t, network, srv.Addr(), "_client._tcp.kv.shop.svc.cluster.local.", dns.TypeSRV)
			if len(resp.Answer) != 3 {
				t.Errorf("kv's SRV over %s = %q, want one per ready endpoint", network, short(resp.Answer))
			}
			resp = query(t, network, srv.Addr(), "missing.shop.svc.cluster.local.", dns.TypeA)
			if resp.Rcode != dns.RcodeNameError || len(resp.Ns) != 1 {
				t.Errorf("a missing service over %s = %s with authority %v, want NXDOMAIN with the SOA", network, dns.RcodeToString[resp.Rcode], resp.Ns)
			}
		})
	}
}

func TestServerRefusesOtherNamesWithoutUpstream(t *testing.T) {
	srv := startServer(t, &staticSource{snap: shop()})
	resp := query(t, "udp", srv.Addr(), "example.com.", dns.TypeA)
	if resp.Rcode != dns.RcodeRefused {
		t.Errorf("example.com without upstream = %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
}

// fakeUpstream serves example.com on 127.0.0.1, as the host's resolver
// would, and counts the queries it gets: no test sends traffic off the
// machine.
func fakeUpstream(t *testing.T) (addr string, asked func() int) {
	t.Helper()
	var (
		mu sync.Mutex
		n  int
	)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		n++
		mu.Unlock()
		m := new(dns.Msg).SetReply(r)
		if q := r.Question[0]; q.Name == "example.com." && q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.com. 300 IN A 192.0.2.80")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	udp, tcp, err := clusterdns.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: udp, Handler: handler}, {Listener: tcp, Handler: handler}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return udp.LocalAddr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestServerForwardsOtherNamesUpstream(t *testing.T) {
	up, asked := fakeUpstream(t)
	dead := "127.0.0.1:1" // nothing listens: the server moves on to the next upstream.
	srv := startServer(t, &staticSource{snap: shop()}, dead, up)
	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, network, srv.Addr(), "example.com.", dns.TypeA)
		if got := short(resp.Answer); !slices.Equal(got, []string{"A 192.0.2.80"}) {
			t.Errorf("example.com over %s = %q, want the upstream's A 192.0.2.80", network, got)
		}
	}
	before := asked()
	resp := query(t, "udp", srv.Addr(), "nope.shop.svc.cluster.local.", dns.TypeA)
	if resp.Rcode != dns.RcodeNameError || !resp.RecursionAvailable || asked() != before {
		t.Errorf("a missing cluster name = %s ra=%v, upstream asked %d more times; want the cluster's own NXDOMAIN", dns.RcodeToString[resp.Rcode], resp.RecursionAvailable, asked()-before)
	}
}

func TestServerTruncatesLargeUDPAnswers(t *testing.T) {
	var eps []discoveryv1.Endpoint
	for i := range 100 {
		eps = append(eps, endpoint(fmt.Sprintf("10.244.2.%d", i+1), "", "", nil))
	}
	snap := &clusterdns.Snapshot{
		Services:       []skiffcorev1.Service{service("big", "many", corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone})},
		EndpointSlices: []skiffcorev1.EndpointSlice{slice("big", "many-a", "many", nil, eps...)},
	}
	srv := startServer(t, &staticSource{snap: snap})
	udp := query(t, "udp", srv.Addr(), "many.big.svc.cluster.local.", dns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Errorf("100 addresses over UDP: truncated=%v with %d answers, want the TC bit so the client retries over TCP", udp.Truncated, len(udp.Answer))
	}
	tcp := query(t, "tcp", srv.Addr(), "many.big.svc.cluster.local.", dns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("100 addresses over TCP: truncated=%v with %d answers, want all 100", tcp.Truncated, len(tcp.Answer))
	}
}

func TestServerRebuildsOnChanged(t *testing.T) {
	src := &staticSource{snap: &clusterdns.Snapshot{}}
	srv := startServer(t, src)
	if resp := query(t, "udp", srv.Addr(), "web.shop.svc.cluster.local.", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("web before it exists = %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	src.set(shop())
	srv.Changed()
	testenv.Eventually(t, 30*time.Second, func() error {
		resp := query(t, "udp", srv.Addr(), "web.shop.svc.cluster.local.", dns.TypeA)
		if got := short(resp.Answer); !slices.Equal(got, []string{"A 10.96.0.20"}) {
			return fmt.Errorf("web after Changed = %s %q, want A 10.96.0.20", dns.RcodeToString[resp.Rcode], got)
		}
		return nil
	})
}

func TestServerFreesItsAddressWhenStopped(t *testing.T) {
	srv, err := clusterdns.New(clusterdns.Config{Addr: "127.0.0.1:0", Source: &staticSource{snap: shop()}})
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Run(t, "the cluster DNS server", srv.Start)
	query(t, "tcp", srv.Addr(), "web.shop.svc.cluster.local.", dns.TypeA)
	stop()
	// A restarted agent binds the same address again.
	again, err := clusterdns.New(clusterdns.Config{Addr: srv.Addr(), Source: &staticSource{snap: shop()}})
	if err != nil {
		t.Fatalf("binding %s again after Start returned: %v", srv.Addr(), err)
	}
	testenv.Run(t, "the restarted cluster DNS server", again.Start)
	if resp := query(t, "udp", again.Addr(), "web.shop.svc.cluster.local.", dns.TypeA); len(resp.Answer) != 1 {
		t.Errorf("the restarted server answered %q, want web's address", short(resp.Answer))
	}
}

// brokenSource never gives a snapshot, as an apiserver that cannot be
// reached.
type brokenSource struct{}

func (brokenSource) Snapshot(context.Context) (*clusterdns.Snapshot, error) {
	return nil, errors.New("the apiserver is unreachable")
}

func TestServerFailsClusterNamesUntilItHasRecords(t *testing.T) {
	srv := startServer(t, brokenSource{})
	// SERVFAIL, not NXDOMAIN: a resolver must not cache that web is missing.
	if resp := query(t, "udp", srv.Addr(), "web.shop.svc.cluster.local.", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("web without records = %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if resp := query(t, "udp", srv.Addr(), "example.com.", dns.TypeA); resp.Rcode != dns.RcodeRefused {
		t.Errorf("example.com without records or upstream = %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
}
