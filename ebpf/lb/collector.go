package lb

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The datapath's counters as Prometheus series. They are read from the
// per-CPU map on each scrape, so that the agent keeps no copy to go stale,
// and they count from the datapath's first load: the map is pinned and
// outlives agent restarts, as the counters of a kernel's do.
var (
	connectionsDesc = prometheus.NewDesc("skiff_lb_connections_total",
		"Sockets the eBPF load balancer looked up, by result: translated (sent to a backend), no_backend (refused: the service has no backends) or unknown_vip (refused: in a service CIDR but no service). A TCP or UDP connect counts once, an unconnected UDP send each time.",
		[]string{"result"}, nil)
	reverseNATDesc = prometheus.NewDesc("skiff_lb_reverse_nat_total",
		"Replies and getpeername calls the eBPF load balancer showed as coming from the service's address instead of the backend's.",
		nil, nil)
)

// CounterReader is what the collector reads: a LoadBalancer.
type CounterReader interface {
	Counters() (Counters, error)
}

// Collector exports a datapath's counters. Register it once, on the
// registry /metrics serves, while the datapath is open.
type Collector struct {
	source CounterReader
	errors prometheus.Counter
}

// NewCollector returns a collector of source's counters.
func NewCollector(source CounterReader) *Collector {
	return &Collector{source: source, errors: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_lb_counter_read_errors_total",
		Help: "Scrapes that could not read the eBPF load balancer's counters.",
	})}
}

// Describe sends the series' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectionsDesc
	ch <- reverseNATDesc
	c.errors.Describe(ch)
}

// Collect reads the counters; a failed read exports none of them for this
// scrape, and counts the failure, rather than report zeros as totals.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counters, err := c.source.Counters()
	if err != nil {
		c.errors.Inc()
	} else {
		for _, s := range []struct {
			result string
			n      uint64
		}{{"translated", counters.Translated}, {"no_backend", counters.NoBackend}, {"unknown_vip", counters.UnknownVIP}} {
			ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.CounterValue, float64(s.n), s.result)
		}
		ch <- prometheus.MustNewConstMetric(reverseNATDesc, prometheus.CounterValue, float64(counters.ReverseNAT))
	}
	c.errors.Collect(ch)
}
