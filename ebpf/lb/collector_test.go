package lb_test

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/ebpf/lb"
)

// TestCollectorReadsTheDatapath drives a loaded datapath (connections
// balanced, one to a service without backends, one to an unknown VIP) and
// checks that a scrape reports exactly the kernel's counters under each
// result.
func TestCollectorReadsTheDatapath(t *testing.T) {
	d := attach(t)
	backends := startBackends(t, 2)
	if err := d.SetService(lb.Service{VIP: vip, Port: vipPort, Proto: lb.TCP, Backends: tcpAddrs(backends)}); err != nil {
		t.Fatal(err)
	}
	empty := netip.MustParseAddr("10.99.0.11")
	if err := d.SetService(lb.Service{VIP: empty, Port: vipPort, Proto: lb.TCP}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustDial(t, "tcp4", vipTCP)
	}
	for _, addr := range []string{netip.AddrPortFrom(empty, vipPort).String(), "10.99.200.200:80"} {
		if _, err := dial(t, "tcp4", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s = %v, want ECONNREFUSED", addr, err)
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lb.NewCollector(d))
	got := gatherValues(t, reg)
	kernel, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`skiff_lb_connections_total{result="translated"}`:  float64(kernel.Translated),
		`skiff_lb_connections_total{result="no_backend"}`:  float64(kernel.NoBackend),
		`skiff_lb_connections_total{result="unknown_vip"}`: float64(kernel.UnknownVIP),
		`skiff_lb_reverse_nat_total`:                       float64(kernel.ReverseNAT),
		`skiff_lb_counter_read_errors_total`:               0,
	}
	if !maps.Equal(got, want) {
		t.Errorf("scraped %v, want the kernel's %v", got, want)
	}
	if kernel.Translated < 3 || kernel.NoBackend < 1 || kernel.UnknownVIP < 1 {
		t.Errorf("kernel counters %+v, want at least 3 translated, 1 without backend, 1 unknown VIP", kernel)
	}
}

// failingCounters is a datapath whose counters cannot be read (its map
// was closed under it).
type failingCounters struct{}

func (failingCounters) Counters() (lb.Counters, error) {
	return lb.Counters{}, errors.New("map closed")
}

// TestCollectorCountsReadErrors checks that a failed read exports no
// totals (zeros would look like a counter reset) and counts the failure.
func TestCollectorCountsReadErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(lb.NewCollector(failingCounters{}))
	gatherValues(t, reg)
	got := gatherValues(t, reg)
	want := map[string]float64{`skiff_lb_counter_read_errors_total`: 2}
	if !maps.Equal(got, want) {
		t.Errorf("scraped %v, want only %v", got, want)
	}
}

// gatherValues scrapes reg into series name{labels} -> value.
func gatherValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			out[name] = m.GetCounter().GetValue()
		}
	}
	return out
}
