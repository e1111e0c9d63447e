// Package dns is the node agent's cluster DNS: a small server, built on
// miekg/dns, that answers for the cluster domain (cluster.local) as
// upstream's Kubernetes DNS specification says, forwards every other name
// to the host's resolvers, and writes the resolv.conf that points pods at it.
//
// The answers come from a pure core: NewZone turns a snapshot of Services,
// EndpointSlices and Pods into a table of records once, and each query is a
// lookup in that table. The server rebuilds the zone when its Source says the
// objects changed, never per query.
package dns

import (
	"strings"

	"github.com/miekg/dns"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// TTL is the time to live of every answer, in seconds: CoreDNS's kubernetes
// plugin default, short enough that a moved pod is found again quickly.
const TTL = 5

// SchemaVersion is the version of the Kubernetes DNS specification these
// records follow, served as TXT at dns-version.<domain>.
const SchemaVersion = "1.1.0"

// Snapshot is the state of the cluster that the records are built from.
// Pods are read only to name a headless Service's endpoints whose
// EndpointSlice left the hostname out (spec.hostname and spec.subdomain).
type Snapshot struct {
	Services       []skiffcorev1.Service
	EndpointSlices []skiffcorev1.EndpointSlice
	Pods           []skiffcorev1.Pod
}

// Zone is the cluster domain's records, built once from a Snapshot and
// read-only afterwards, so that any number of queries may share it.
type Zone struct {
	domain string
	// records holds every record by owner name (lower case, fully
	// qualified); a CNAME stands alone at its name.
	records map[string][]dns.RR
	// names holds every name that exists in the zone, with records or as
	// the parent of one (svc.cluster.local, say), so that such a name
	// answers NODATA rather than NXDOMAIN.
	names map[string]bool
	soa   dns.RR
}

// Result is the answer to one question.
type Result struct {
	// Rcode is dns.RcodeSuccess, or dns.RcodeNameError (NXDOMAIN) for a name
	// the zone does not hold.
	Rcode int
	// Answer holds the records of the asked name and type, or its CNAME.
	Answer []dns.RR
	// Ns holds the zone's SOA when Answer is empty, whose minimum TTL tells
	// resolvers how long to cache the negative answer.
	Ns []dns.RR
}

// NewZone builds the records of the cluster domain (cluster.local, say)
// from a snapshot.
func NewZone(domain string, snap *Snapshot) *Zone {
	domain = canonical(domain)
	z := &Zone{domain: domain, records: map[string][]dns.RR{}, names: map[string]bool{}}
	// The serial never moves: nothing transfers this zone, and the records
	// live TTL seconds anyway.
	z.soa = &dns.SOA{
		Hdr: header(domain, dns.TypeSOA), Ns: "ns.dns." + domain, Mbox: "hostmaster." + domain,
		Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL,
	}
	z.add(z.soa)
	z.add(&dns.TXT{Hdr: header("dns-version."+domain, dns.TypeTXT), Txt: []string{SchemaVersion}})
	addServices(z, snap)
	return z
}

// Domain returns the zone's apex, fully qualified.
func (z *Zone) Domain() string { return z.domain }

// Lookup answers a question of type qtype about name. It reports false when
// the name is not the zone's to answer: outside the cluster domain, and not a
// reverse name of an address the zone knows. The server forwards those.
func (z *Zone) Lookup(name string, qtype uint16) (Result, bool) {
	name = canonical(name)
	rrs, found := z.records[name]
	if !found && !dns.IsSubDomain(z.domain, name) {
		return Result{}, false
	}
	if !z.names[name] {
		return Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{z.soa}}, true
	}
	var answer []dns.RR
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if t == qtype || qtype == dns.TypeANY || (t == dns.TypeCNAME && qtype != dns.TypeCNAME) {
			answer = append(answer, dns.Copy(rr))
		}
	}
	if len(answer) == 0 {
		return Result{Rcode: dns.RcodeSuccess, Ns: []dns.RR{z.soa}}, true
	}
	return Result{Rcode: dns.RcodeSuccess, Answer: answer}, true
}

// add records rr under its owner name, once.
func (z *Zone) add(rr dns.RR) {
	name := rr.Header().Name
	for _, have := range z.records[name] {
		if dns.IsDuplicate(have, rr) {
			return
		}
	}
	z.records[name] = append(z.records[name], rr)
	z.exists(name)
}

// exists marks name, and its parents inside the zone, as existing.
func (z *Zone) exists(name string) {
	for n := name; ; {
		z.names[n] = true
		if n == z.domain || !dns.IsSubDomain(z.domain, n) {
			return
		}
		i, _ := dns.NextLabel(n, 0)
		n = n[i:]
	}
}

// header is a record header of the zone's class and TTL.
func header(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: TTL}
}

// canonical is a name as the zone keys it: lower case and fully qualified.
func canonical(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}
