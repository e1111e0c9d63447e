package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Config configures a cluster DNS server.
type Config struct {
	// Addr is where to serve, over UDP and TCP both: the cluster DNS
	// address, as 10.96.0.10:53; a test passes 127.0.0.1:0.
	Addr string
	// Domain is the cluster domain, cluster.local by default.
	Domain string
	// Upstream are the resolvers (host:port) that answer names outside the
	// cluster domain, tried in order: the host's, from its resolv.conf
	// (ResolvConfig.Upstreams). With none, such names are refused.
	Upstream []string
	// Source gives the Services, EndpointSlices and Pods.
	Source Source
	// Refresh is how often the zone is rebuilt from Source when nothing
	// called Changed: 5s (the records' TTL) by default.
	Refresh time.Duration
	// ForwardTimeout bounds one query to the upstream resolvers, 5s by
	// default.
	ForwardTimeout time.Duration
}

// Server answers DNS queries for the cluster domain from a zone it rebuilds
// from its Source, and forwards the others upstream.
type Server struct {
	cfg     Config
	domain  string
	zone    atomic.Pointer[Zone]
	changed chan struct{}
	udp     net.PacketConn
	tcp     net.Listener
}

// New makes a server and binds its UDP and TCP sockets at once, so that
// Addr is known, and a port in use is reported, before Start.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("cluster DNS: Config.Source is required: pass a ReaderSource over the agent's cache")
	}
	if cfg.Domain == "" {
		cfg.Domain = "cluster.local"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = TTL * time.Second
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = 5 * time.Second
	}
	udp, tcp, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, domain: canonical(cfg.Domain), changed: make(chan struct{}, 1), udp: udp, tcp: tcp}, nil
}

// listen binds UDP and TCP at the same address. With port 0 the kernel picks
// the UDP port, and TCP takes the same one, retrying if it is taken.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	var err error
	for range 10 {
		udp, uerr := net.ListenPacket("udp", addr)
		if uerr != nil {
			return nil, nil, fmt.Errorf("cluster DNS: listening on udp %s: %w", addr, uerr)
		}
		tcp, terr := net.Listen("tcp", udp.LocalAddr().String())
		if terr == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		err = fmt.Errorf("cluster DNS: listening on tcp %s: %w", udp.LocalAddr(), terr)
	}
	return nil, nil, err
}

// Addr is the address the server listens on, over UDP and TCP.
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Changed asks the server to rebuild its zone now. It never blocks: changes
// that come while a rebuild waits are served by that one rebuild.
func (s *Server) Changed() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Start builds the zone, serves until ctx ends, and closes the sockets. It
// is a controller-runtime Runnable, so the node agent's manager can run it.
func (s *Server) Start(ctx context.Context) error {
	s.rebuild(ctx)
	servers := []*dns.Server{{PacketConn: s.udp, Handler: s}, {Listener: s.tcp, Handler: s}}
	failed := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { failed <- srv.ActivateAndServe() }()
	}
	defer func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
		// Shutdown refuses a server that has not started yet; closing its
		// socket ends it as soon as it does.
		_ = s.udp.Close()
		_ = s.tcp.Close()
	}()
	ticker := time.NewTicker(s.cfg.Refresh)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return fmt.Errorf("cluster DNS at %s stopped serving: %w", s.Addr(), err)
		case <-s.changed:
			s.rebuild(ctx)
		case <-ticker.C:
			s.rebuild(ctx)
		}
	}
}

// NeedLeaderElection is false: every node agent serves its own pods, leader
// or not.
func (s *Server) NeedLeaderElection() bool { return false }

// rebuild replaces the zone with one built from a fresh snapshot. On error
// the old zone keeps answering: stale records beat none.
func (s *Server) rebuild(ctx context.Context) {
	snap, err := s.cfg.Source.Snapshot(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logf.FromContext(ctx).Error(err, "cluster DNS keeps its previous records")
		}
		return
	}
	s.zone.Store(NewZone(s.domain, snap))
}

// ServeDNS answers one query: from the zone for the cluster domain (and the
// reverse names of the addresses it knows), from upstream for the rest.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		_ = w.WriteMsg(m.SetRcode(r, dns.RcodeNotImplemented))
		return
	}
	q := r.Question[0]
	zone := s.zone.Load()
	if zone == nil {
		if dns.IsSubDomain(s.domain, canonical(q.Name)) {
			// Not loaded yet: a resolver retries SERVFAIL, and must not
			// cache an NXDOMAIN for a Service that exists.
			_ = w.WriteMsg(m.SetRcode(r, dns.RcodeServerFailure))
			return
		}
		s.forward(w, r)
		return
	}
	res, ours := zone.Lookup(q.Name, q.Qtype)
	if !ours {
		s.forward(w, r)
		return
	}
	m.SetRcode(r, res.Rcode)
	m.Authoritative = true
	m.RecursionAvailable = len(s.cfg.Upstream) > 0
	m.Answer, m.Ns = res.Answer, res.Ns
	_ = w.WriteMsg(fit(m, r, isUDP(w)))
}

// forward relays a query to the upstream resolvers in turn, over the
// transport it came in on, and relays the first answer back. Without
// upstreams the query is refused; when none answers, it fails.
func (s *Server) forward(w dns.ResponseWriter, r *dns.Msg) {
	if len(s.cfg.Upstream) == 0 {
		_ = w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeRefused))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ForwardTimeout)
	defer cancel()
	c := &dns.Client{Net: "tcp"}
	if isUDP(w) {
		c.Net = "udp"
	}
	for _, up := range s.cfg.Upstream {
		if resp, _, err := c.ExchangeContext(ctx, r, up); err == nil {
			_ = w.WriteMsg(resp)
			return
		}
	}
	_ = w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
}

// fit truncates an answer to what the client can take: 512 bytes over UDP,
// or the size its EDNS0 record offers, so that it retries over TCP.
func fit(m, r *dns.Msg, udp bool) *dns.Msg {
	size := dns.MaxMsgSize
	if udp {
		size = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
			m.SetEdns0(uint16(size), false)
		}
	}
	m.Truncate(size)
	return m
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}
