package cni

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// Setup gives the pod its network: a namespace of its own with lo up and an
// eth0 on the node's bridge with an address from the podCIDR, and ports
// published on the node (mappings without a HostPort are left out). It is
// idempotent: a pod already set up gets its result back from libcni's cache,
// without a second ADD. A Setup that fails undoes what it did.
func (n *Network) Setup(ctx context.Context, pod PodRef, ports []PortMapping) (Result, error) {
	if err := checkUID(pod.UID); err != nil {
		return Result{}, err
	}
	defer n.pods.lock(pod.UID)()
	list := n.confList()
	if list == nil {
		return Result{}, fmt.Errorf("set up the network of pod %s/%s: %w", pod.Namespace, pod.Name, n.Status())
	}
	netns := n.NetNSPath(pod.UID)
	rt := n.runtimeConf(pod, netns, ports)

	cached, err := n.cni.GetNetworkListCachedResult(&libcni.NetworkConfigList{Name: NetworkName, CNIVersion: cniVersion}, rt)
	if err == nil && cached != nil && isNetNS(netns) {
		return podResult(netns, cached)
	}
	if _, statErr := os.Stat(netns); cached != nil || err != nil || statErr == nil {
		// Left by a Setup cut short, or by a previous boot whose
		// namespaces are gone: start afresh rather than ADD on top.
		if err := n.teardown(ctx, pod.UID); err != nil {
			return Result{}, fmt.Errorf("set up the network of pod %s/%s: clear what a previous Setup left: %w", pod.Namespace, pod.Name, err)
		}
	}

	if len(portMappings(ports)) == 0 {
		list = withoutPlugin(list, "portmap")
	}
	res, err := n.add(ctx, list, rt)
	if err != nil {
		if terr := n.teardown(context.WithoutCancel(ctx), pod.UID); terr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", terr))
		}
		return Result{}, fmt.Errorf("set up the network of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return res, nil
}

// withoutPlugin is the conflist without the plugins of one type: a pod that
// publishes no hostPort skips portmap, which saves a plugin run (and its
// iptables calls) on every pod start. The conflist an ADD used is what
// libcni caches and what the DEL runs, so the two always match.
func withoutPlugin(list *libcni.NetworkConfigList, typ string) *libcni.NetworkConfigList {
	out := *list
	out.Plugins = nil
	for _, p := range list.Plugins {
		if p.Network.Type != typ {
			out.Plugins = append(out.Plugins, p)
		}
	}
	return &out
}

// add creates the pod's namespace and runs the plugins' ADD in it: loopback
// first, then the conflist, whose cached result marks the pod as set up.
func (n *Network) add(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (Result, error) {
	if err := createNetNS(rt.NetNS); err != nil {
		return Result{}, err
	}
	lo, err := libcni.ConfFromBytes(loopbackConf())
	if err != nil {
		return Result{}, err
	}
	if _, err := n.cni.AddNetwork(ctx, lo, loopbackRuntimeConf(rt)); err != nil {
		return Result{}, fmt.Errorf("bring up lo: %w", err)
	}
	res, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		return Result{}, err
	}
	return podResult(rt.NetNS, res)
}

// Teardown removes the pod's network: the plugins' DEL, with the config the
// pod was set up with (the podCIDR may have changed since), releases its
// address, veth and port mappings; then its namespace goes. Whatever is
// already gone is not an error, so it may be called again, after a Setup that
// failed halfway, or for a pod it never set up.
func (n *Network) Teardown(ctx context.Context, uid string) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	defer n.pods.lock(uid)()
	if err := n.teardown(ctx, uid); err != nil {
		return fmt.Errorf("tear down the network of pod %s: %w", uid, err)
	}
	return nil
}

func (n *Network) teardown(ctx context.Context, uid string) error {
	netns := n.NetNSPath(uid)
	rt := &libcni.RuntimeConf{ContainerID: uid, IfName: podIfName}
	// The plugins only look into a namespace that is really one: a bare
	// file left by a reboot makes them fail, while an empty NetNS tells
	// them there is nothing left inside, only the address to release.
	if isNetNS(netns) {
		rt.NetNS = netns
	}
	if err := n.delList(ctx, rt); err != nil {
		return err
	}
	if err := n.delLoopback(ctx, loopbackRuntimeConf(rt)); err != nil {
		return err
	}
	return removeNetNS(netns)
}

// delList runs the conflist's DEL with the cached config of the pod's ADD,
// or with the current one when there is none, or none that can be read (an
// ADD that failed halfway may still hold an address; host-local releases it
// by the pod's UID).
func (n *Network) delList(ctx context.Context, rt *libcni.RuntimeConf) error {
	list := n.confList()
	body, cachedRt, err := n.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: NetworkName}, rt)
	var cached *libcni.NetworkConfigList
	if err == nil && body != nil {
		cached, err = libcni.ConfListFromBytes(body)
	}
	if err == nil && cached != nil {
		list, rt = cached, cachedRt
	} else {
		rt = withAnyPortMapping(rt)
	}
	if list == nil {
		return nil
	}
	err = n.cni.DelNetworkList(ctx, list, rt)
	if err == nil || rt.NetNS == "" {
		return err
	}
	// The bridge plugin's DEL fails on state an ADD left halfway (a
	// masquerade rule it never made). Without the namespace it only
	// releases the address; the veth goes with the namespace.
	noNetNS := *rt
	noNetNS.NetNS = ""
	if err2 := n.cni.DelNetworkList(ctx, list, &noNetNS); err2 != nil {
		return errors.Join(err, err2)
	}
	return nil
}

// delLoopback runs loopback's DEL, which only brings lo down; the namespace
// goes next anyway, but the DEL also clears libcni's cache entry.
func (n *Network) delLoopback(ctx context.Context, rt *libcni.RuntimeConf) error {
	lo, err := libcni.ConfFromBytes(loopbackConf())
	if err != nil {
		return err
	}
	return n.cni.DelNetwork(ctx, lo, rt)
}

// List returns the UIDs of the pods that have network state here (a
// namespace file or a cached ADD), sorted, so that an agent that restarts can
// tear down the ones whose pods are gone.
func (n *Network) List() ([]string, error) {
	uids := map[string]bool{}
	entries, err := os.ReadDir(n.netnsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		uids[e.Name()] = true
	}
	attachments, err := n.cni.GetCachedAttachments("")
	if err != nil {
		return nil, err
	}
	for _, a := range attachments {
		if a.Network == NetworkName || a.Network == loopbackNetworkName {
			uids[a.ContainerID] = true
		}
	}
	out := make([]string, 0, len(uids))
	for uid := range uids {
		out = append(out, uid)
	}
	sort.Strings(out)
	return out, nil
}

// checkUID refuses a UID that libcni would refuse as a container ID, or
// that would lead the namespace file out of its directory.
func checkUID(uid string) error {
	if !uidPattern.MatchString(uid) {
		return fmt.Errorf("cni: pod UID %q: must be letters, digits, '_', '.' and '-', starting with a letter or digit", uid)
	}
	return nil
}

var uidPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// runtimeConf is the pod's side of a CNI call: the pod's UID stands for the
// container ID, since the namespace belongs to the pod and not to any of its
// containers, and the K8S_* args are the ones the kubelet passes.
func (n *Network) runtimeConf(pod PodRef, netns string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.UID,
		NetNS:       netns,
		IfName:      podIfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.UID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	if m := portMappings(ports); len(m) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": m}
	}
	return rt
}

// withAnyPortMapping is rt for a DEL without the ports of the ADD, whose
// cache is missing because it failed or was cut short. portmap's DEL does
// nothing without port mappings, though it removes the pod's chains by its
// container ID whatever they are, so any mapping will do.
func withAnyPortMapping(rt *libcni.RuntimeConf) *libcni.RuntimeConf {
	out := *rt
	out.CapabilityArgs = map[string]any{"portMappings": portMappings([]PortMapping{{HostPort: 1, ContainerPort: 1}})}
	return &out
}

// loopbackRuntimeConf is rt for the pod's lo.
func loopbackRuntimeConf(rt *libcni.RuntimeConf) *libcni.RuntimeConf {
	lo := *rt
	lo.IfName = "lo"
	lo.CapabilityArgs = nil
	return &lo
}

// portMapping is portmap's runtimeConfig entry.
type portMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// portMappings turns the pod's ports into portmap's, leaving out the ones
// that publish nothing (no hostPort); portmap wants protocols in lower case.
func portMappings(ports []PortMapping) []portMapping {
	var out []portMapping
	for _, p := range ports {
		if p.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, portMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	return out
}

// podResult picks the pod's IPv4 address out of the plugins' result.
func podResult(netns string, res types.Result) (Result, error) {
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Result{}, fmt.Errorf("read the CNI result: %w", err)
	}
	for _, ip := range r.IPs {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			return Result{NetNSPath: netns, IP: v4}, nil
		}
	}
	return Result{}, fmt.Errorf("the CNI result has no IPv4 address: %s", r)
}

// podLocks serializes the calls for one pod while letting different pods
// proceed in parallel.
type podLocks struct {
	mu    sync.Mutex
	locks map[string]*podLock
}

type podLock struct {
	sync.Mutex
	users int
}

// lock locks uid and returns its unlock.
func (p *podLocks) lock(uid string) func() {
	p.mu.Lock()
	if p.locks == nil {
		p.locks = map[string]*podLock{}
	}
	l := p.locks[uid]
	if l == nil {
		l = &podLock{}
		p.locks[uid] = l
	}
	l.users++
	p.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		p.mu.Lock()
		if l.users--; l.users == 0 {
			delete(p.locks, uid)
		}
		p.mu.Unlock()
	}
}
