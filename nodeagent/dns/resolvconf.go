package dns

import (
	"bufio"
	"bytes"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// The resolver's limits, as upstream's kubelet applies them: glibc reads
// three nameservers at most, and kubelet trims the search list to 32
// domains and 2048 characters.
const (
	maxNameservers = 3
	maxSearches    = 32
	maxSearchChars = 2048
)

// ResolvConfig is what a resolv.conf says: the nameservers to ask, the
// search domains to try, and the resolver options ("ndots:5").
type ResolvConfig struct {
	Nameservers []string
	Searches    []string
	Options     []string
}

// ParseResolvConf reads a resolv.conf, the node's usually. As the resolver
// does, the last search or domain line wins and options add up; comments and
// unknown keywords are ignored.
func ParseResolvConf(data []byte) ResolvConfig {
	var c ResolvConfig
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.Nameservers = append(c.Nameservers, f[1])
		case "search", "domain":
			c.Searches = slices.Clone(f[1:])
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}

// Upstreams returns the nameservers as host:port addresses (port 53), for
// Config.Upstream.
func (c ResolvConfig) Upstreams() []string {
	out := make([]string, 0, len(c.Nameservers))
	for _, ns := range c.Nameservers {
		out = append(out, net.JoinHostPort(ns, "53"))
	}
	return out
}

// Bytes renders the configuration as a resolv.conf.
func (c ResolvConfig) Bytes() []byte {
	var b bytes.Buffer
	for _, ns := range c.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(c.Searches) > 0 {
		b.WriteString("search " + strings.Join(c.Searches, " ") + "\n")
	}
	if len(c.Options) > 0 {
		b.WriteString("options " + strings.Join(c.Options, " ") + "\n")
	}
	return b.Bytes()
}

// ResolvConf returns the resolv.conf of a pod, as upstream's kubelet writes
// it for the pod's spec.dnsPolicy:
//
//   - ClusterFirst (the default): the cluster DNS at nameserver, search
//     <ns>.svc.<domain> svc.<domain> <domain> and then the host's search
//     domains, and options ndots:5, so that a short name such as "web" is
//     tried as a Service first. A hostNetwork pod gets the host's instead,
//     as does every pod when no cluster DNS is configured (nameserver "").
//   - ClusterFirstWithHostNet: as ClusterFirst, hostNetwork or not.
//   - Default: the host's resolv.conf.
//   - None: only what spec.dnsConfig says.
//
// spec.dnsConfig then adds its nameservers and searches (without repeats)
// and its options, which replace the options of the same name.
func ResolvConf(pod *skiffcorev1.Pod, nameserver, domain string, host ResolvConfig) []byte {
	var c ResolvConfig
	switch policy := pod.Spec.DNSPolicy; {
	case policy == corev1.DNSNone:
	case policy == corev1.DNSDefault, nameserver == "",
		policy != corev1.DNSClusterFirstWithHostNet && pod.Spec.HostNetwork:
		c = host
	default:
		domain = strings.TrimSuffix(domain, ".")
		c = ResolvConfig{
			Nameservers: []string{nameserver},
			Searches:    append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain}, host.Searches...),
			Options:     []string{"ndots:5"},
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		c.Nameservers = append(slices.Clone(c.Nameservers), dc.Nameservers...)
		c.Searches = append(slices.Clone(c.Searches), dc.Searches...)
		c.Options = mergeOptions(c.Options, dc.Options)
	}
	c.Nameservers = limit(unique(c.Nameservers), maxNameservers)
	c.Searches = limitSearches(unique(c.Searches))
	return c.Bytes()
}

// mergeOptions adds the pod's options to base; a pod option replaces the
// base option of the same name ("ndots:2" replaces "ndots:5").
func mergeOptions(base []string, pod []corev1.PodDNSConfigOption) []string {
	out := slices.Clone(base)
	for _, o := range pod {
		opt := o.Name
		if o.Value != nil {
			opt += ":" + *o.Value
		}
		i := slices.IndexFunc(out, func(have string) bool { return optionName(have) == o.Name })
		if i >= 0 {
			out[i] = opt
		} else {
			out = append(out, opt)
		}
	}
	return out
}

// optionName is an option without its value: "ndots" of "ndots:5".
func optionName(opt string) string {
	name, _, _ := strings.Cut(opt, ":")
	return name
}

// unique drops repeats, keeping the first of each.
func unique(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// limit keeps the first n entries.
func limit(list []string, n int) []string {
	if len(list) > n {
		return list[:n]
	}
	return list
}

// limitSearches keeps the search domains that fit the resolver's limits, in
// order.
func limitSearches(list []string) []string {
	list = limit(list, maxSearches)
	chars := 0
	for i, s := range list {
		if chars += len(s) + 1; chars > maxSearchChars {
			return list[:i]
		}
	}
	return list
}
