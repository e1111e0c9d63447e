// Package cni is the node agent's pod network: each pod gets a network
// namespace of its own with lo and an eth0 on the node's bridge, an address
// from the node's podCIDR and its hostPorts published, through libcni and
// the standard bridge, host-local, loopback and portmap plugins, as the
// kubelet's CNI plugin does through containerd.
//
// Everything it keeps (namespace files, the conflist, host-local's leases,
// libcni's cache) lives under one state directory, so that an agent that
// restarts finds and tears down what the previous one set up, and tests never
// touch the host's /var/lib/cni.
package cni

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
)

// DefaultPluginDirs are where the CNI plugins are looked for: Debian's
// containernetworking-plugins, then the upstream release's usual place.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// DefaultBridge is the node's pod bridge when Config.Bridge is empty.
const DefaultBridge = "skiff0"

// requiredPlugins are the plugins skiff's configs name.
var requiredPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

// podIfName is the pod's interface on the bridge, as in Kubernetes.
const podIfName = "eth0"

// Config says where the plugins are and where the network keeps its state.
type Config struct {
	// PluginDirs are searched in order for the plugins; empty means
	// DefaultPluginDirs.
	PluginDirs []string
	// StateDir holds the pods' namespace files (netns/), the conflist
	// (net.d/), host-local's leases (ipam/) and libcni's cache (cache/). It
	// must survive an agent restart and be private to one agent.
	StateDir string
	// Bridge is the host bridge the pods are attached to; empty means
	// DefaultBridge.
	Bridge string
	// MTU of the pods' interfaces; 0 keeps the bridge plugin's default.
	MTU int
}

// PodRef names the pod a network namespace is for. The UID keys everything;
// the namespace and name are passed to the plugins as Kubernetes does.
type PodRef struct {
	UID       string
	Namespace string
	Name      string
}

// PortMapping publishes a container port on the node (a container port's
// hostPort), through portmap.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is TCP, UDP or SCTP, in any case; empty means TCP.
	Protocol string
	// HostIP restricts the mapping to one of the node's addresses; empty
	// means all of them.
	HostIP string
}

// Result is what the runtime needs of a pod's network.
type Result struct {
	// NetNSPath is the namespace file the pod's containers join through
	// their OCI spec (a "network" namespace with this path).
	NetNSPath string
	// IP is the pod's IPv4 address, its status.podIP.
	IP net.IP
}

// Network sets up and tears down pods' networks on one node. It is safe for
// concurrent use; calls for the same pod are serialized.
type Network struct {
	cfg  Config
	cni  *libcni.CNIConfig
	pods podLocks

	mu      sync.RWMutex
	list    *libcni.NetworkConfigList // nil until a podCIDR is set
	podCIDR string
}

// New checks that the plugins are installed and returns the network of the
// node whose state is in cfg.StateDir. The podCIDR of the last SetPodCIDR
// over that directory, if any, is in force again until the next one.
func New(cfg Config) (*Network, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("cni: Config.StateDir must be set (e.g. /var/lib/skiff/cni)")
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	dir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = dir
	if err := checkPlugins(cfg.PluginDirs); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	n := &Network{cfg: cfg}
	n.cni = libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, n.cacheDir(), nil)
	if err := n.loadConfList(); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Network) netnsDir() string { return filepath.Join(n.cfg.StateDir, "netns") }
func (n *Network) confListPath() string {
	return filepath.Join(n.cfg.StateDir, "net.d", "10-skiff.conflist")
}
func (n *Network) ipamDir() string  { return filepath.Join(n.cfg.StateDir, "ipam") }
func (n *Network) cacheDir() string { return filepath.Join(n.cfg.StateDir, "cache") }

// NetNSPath is where the namespace of the pod with this UID is kept.
func (n *Network) NetNSPath(uid string) string { return filepath.Join(n.netnsDir(), uid) }

// checkPlugins says which of the plugins skiff needs are missing and how to
// install them.
func checkPlugins(dirs []string) error {
	var missing []string
	for _, p := range requiredPlugins {
		if !pluginPresent(dirs, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("CNI plugins %s not found in %s: run `make node-prereqs` (apt-get install containernetworking-plugins)",
			strings.Join(missing, ", "), strings.Join(dirs, ":"))
	}
	return nil
}

func pluginPresent(dirs []string, name string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// SetPodCIDR (re)writes the network's conflist for the node's podCIDR. Pods
// set up afterwards get addresses from it; pods already set up keep theirs
// and are torn down with the config they were set up with.
func (n *Network) SetPodCIDR(cidr string) error {
	body, err := RenderConfList(cidr, n.cfg.Bridge, n.cfg.MTU, n.ipamDir())
	if err != nil {
		return err
	}
	list, err := libcni.ConfListFromBytes(body)
	if err != nil {
		return fmt.Errorf("parse the rendered conflist: %w", err)
	}
	path := n.confListPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	// Written aside and renamed, so that a crash leaves the old or the new
	// config, never half of one.
	if err := os.WriteFile(path+".tmp", body, 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	n.mu.Lock()
	n.list, n.podCIDR = list, cidr
	n.mu.Unlock()
	return nil
}

// loadConfList takes up the conflist a previous agent wrote, if any.
func (n *Network) loadConfList() error {
	body, err := os.ReadFile(n.confListPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	list, err := libcni.ConfListFromBytes(body)
	if err != nil {
		return fmt.Errorf("%s: %w (remove it; the agent writes it again from the node's podCIDR)", n.confListPath(), err)
	}
	n.list, n.podCIDR = list, renderedPodCIDR(body)
	return nil
}

// PodCIDR is the podCIDR in force; empty until one is set.
func (n *Network) PodCIDR() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.podCIDR
}

// Status says whether pods can be set up: the plugins are installed and the
// node has a podCIDR. Its error is the reason the node agent reports in the
// Node's NetworkUnavailable and Ready conditions until then, as the kubelet
// does with "cni config uninitialized".
func (n *Network) Status() error {
	if err := checkPlugins(n.cfg.PluginDirs); err != nil {
		return fmt.Errorf("network plugin not ready: %w", err)
	}
	if n.confList() == nil {
		return errors.New("network plugin not ready: no podCIDR yet: the node's spec.podCIDR is empty (the node IPAM controller assigns it)")
	}
	return nil
}

func (n *Network) confList() *libcni.NetworkConfigList {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.list
}
