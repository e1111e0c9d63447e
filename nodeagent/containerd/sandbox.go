package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/dns"
)

// ClusterDomain is the DNS domain of the cluster's Services and pods.
const ClusterDomain = "cluster.local"

// sandbox is what a pod's containers share: its network namespace and
// address, its hostname and the files the agent writes for it.
type sandbox struct {
	// NetNS is the pod's network namespace; empty for the host's.
	NetNS    string
	IP       string
	Hostname string
	// Hosts, HostnameFile and ResolvConf are the pod's /etc files.
	Hosts, HostnameFile, ResolvConf string
}

// sandbox sets up the pod's network and its /etc files. It is idempotent:
// each pass returns the same sandbox for the same pod.
func (r *Runtime) sandbox(ctx context.Context, pod *skiffcorev1.Pod) (*sandbox, error) {
	sb := &sandbox{Hostname: podHostname(pod)}
	switch {
	case pod.Spec.HostNetwork:
		sb.IP = r.hostIP
		if h, err := os.Hostname(); err == nil {
			sb.Hostname = h
		}
	case r.cfg.Network != nil:
		netns, ip, err := r.cfg.Network.Setup(ctx, pod)
		if err != nil {
			return nil, fmt.Errorf("setting up the network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		sb.NetNS, sb.IP = netns, ip
	default:
		sb.IP = r.hostIP
	}
	dir := r.podDir(pod.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sb.Hosts, sb.HostnameFile, sb.ResolvConf = filepath.Join(dir, "hosts"), filepath.Join(dir, "hostname"), filepath.Join(dir, "resolv.conf")
	files := map[string][]byte{
		sb.Hosts:        hostsFile(pod, sb.IP, sb.Hostname, r.clusterDomain()),
		sb.HostnameFile: []byte(sb.Hostname + "\n"),
		sb.ResolvConf:   dns.ResolvConf(pod, r.cfg.ClusterDNS, r.clusterDomain(), hostResolvConf()),
	}
	for path, body := range files {
		if err := writeIfChanged(path, body); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// podHostname is the pod's hostname as upstream sets it: spec.hostname, or
// the pod's name cut to a DNS label.
func podHostname(pod *skiffcorev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// hostsFile is the pod's /etc/hosts, as the kubelet writes it: localhost,
// the pod's own name (fully qualified when it has a subdomain), and its
// hostAliases.
func hostsFile(pod *skiffcorev1.Pod, ip, hostname, domain string) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (skiff).\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if ip != "" && !pod.Spec.HostNetwork {
		if sub := pod.Spec.Subdomain; sub != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, hostname, sub, pod.Namespace, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// hostResolvConf is the host's resolver configuration, which pods with
// dnsPolicy Default (or hostNetwork) use, and whose search domains
// ClusterFirst pods inherit.
func hostResolvConf() dns.ResolvConfig {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return dns.ResolvConfig{}
	}
	return dns.ParseResolvConf(b)
}

// clusterDomain is the cluster's DNS domain.
func (r *Runtime) clusterDomain() string {
	if r.cfg.ClusterDomain != "" {
		return r.cfg.ClusterDomain
	}
	return ClusterDomain
}

// writeIfChanged writes a file only when its content differs, so that a
// pass that changes nothing touches nothing.
func writeIfChanged(path string, body []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, body) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// normalizeImage turns an image name as pods write it ("busybox") into
// containerd's full reference ("docker.io/library/busybox:latest").
func normalizeImage(image string) string {
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return image
	}
	return named.String()
}
