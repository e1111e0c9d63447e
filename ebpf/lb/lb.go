// Package lb is skiff's service load balancer: eBPF programs in the cgroup
// socket hooks rewrite a connect() or sendmsg() to a service VIP into one to a
// backend, and recvmsg() and getpeername() rewrite the backend back into the
// VIP. Attached at the cgroup2 root they cover host processes and every pod,
// and because they act once per socket rather than once per packet, the VIP
// path costs about what a direct connection costs.
//
// The node agent owns a LoadBalancer: it programs services with SetService and
// DeleteService, and lists what is programmed with Services to reconcile. Maps
// and links are pinned in a bpffs, so the datapath outlives the agent: a
// restarted agent calls Open again, gets the same maps and links back, and
// open connections never notice.
package lb

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -I/usr/include/x86_64-linux-gnu" -target bpfel -type addr -type svc_key -type svc -type backend_key -type backend -type cidr_key lb bpf/sock.c

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// DefaultPinDir is where the node agent pins the datapath.
const DefaultPinDir = "/sys/fs/bpf/skiff"

// LoadBalancer is the loaded and attached datapath. Its methods are safe for
// concurrent use.
type LoadBalancer struct {
	pinDir string
	objs   lbObjects
	links  []link.Link

	mu     sync.Mutex // serialises service updates and id allocation
	nextID uint32
}

// Open loads the load balancer and attaches it at the cgroup2 root, which it
// finds at run time (/sys/fs/cgroup/unified on hybrid hosts, /sys/fs/cgroup on
// pure cgroup2 ones).
func Open(pinDir string) (*LoadBalancer, error) {
	root, err := CgroupRoot()
	if err != nil {
		return nil, err
	}
	return OpenCgroup(pinDir, root)
}

// OpenCgroup loads the load balancer and attaches it to one cgroup2 directory
// and so to the processes below it. Tests use it to confine the datapath to a
// cgroup of their own.
//
// Maps and links pinned in pinDir by an earlier Open are reused: the maps keep
// their services and reverse-NAT entries, and each pinned link is switched
// atomically to the freshly loaded program instead of being attached twice.
func OpenCgroup(pinDir, cgroupPath string) (*LoadBalancer, error) {
	if err := mountBPFFS(pinDir); err != nil {
		return nil, err
	}
	lb := &LoadBalancer{pinDir: pinDir}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}}
	if err := loadLbObjects(&lb.objs, opts); err != nil {
		return nil, fmt.Errorf("loading the load balancer's BPF objects (pinned in %s; if their layout changed, clear them with Unpin first): %w", pinDir, err)
	}
	if err := lb.attach(cgroupPath); err != nil {
		lb.Close()
		return nil, err
	}
	if err := lb.resumeIDs(); err != nil {
		lb.Close()
		return nil, err
	}
	return lb, nil
}

// hooks pairs each program with the socket hook it serves. The pin of a link
// is named after its program.
func (lb *LoadBalancer) hooks() []hook {
	p := &lb.objs.lbPrograms
	return []hook{
		{lbProgLbConnect4, ebpf.AttachCGroupInet4Connect, p.LbConnect4},
		{lbProgLbConnect6, ebpf.AttachCGroupInet6Connect, p.LbConnect6},
		{lbProgLbSendmsg4, ebpf.AttachCGroupUDP4Sendmsg, p.LbSendmsg4},
		{lbProgLbSendmsg6, ebpf.AttachCGroupUDP6Sendmsg, p.LbSendmsg6},
		{lbProgLbRecvmsg4, ebpf.AttachCGroupUDP4Recvmsg, p.LbRecvmsg4},
		{lbProgLbRecvmsg6, ebpf.AttachCGroupUDP6Recvmsg, p.LbRecvmsg6},
		{lbProgLbGetpeername4, ebpf.AttachCgroupInet4GetPeername, p.LbGetpeername4},
		{lbProgLbGetpeername6, ebpf.AttachCgroupInet6GetPeername, p.LbGetpeername6},
	}
}

type hook struct {
	name    string
	attach  ebpf.AttachType
	program *ebpf.Program
}

// attach links every program to the cgroup, or takes over the link a previous
// agent pinned.
func (lb *LoadBalancer) attach(cgroupPath string) error {
	dir := filepath.Join(lb.pinDir, "links")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s for the load balancer's links: %w", dir, err)
	}
	for _, h := range lb.hooks() {
		l, err := attachPinned(filepath.Join(dir, h.name), cgroupPath, h)
		if err != nil {
			return err
		}
		lb.links = append(lb.links, l)
	}
	return nil
}

func attachPinned(pin, cgroupPath string, h hook) (link.Link, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if err == nil {
		if err := l.Update(h.program); err != nil {
			l.Close()
			return nil, fmt.Errorf("replacing the program of pinned link %s: %w", pin, err)
		}
		return l, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("opening pinned link %s: %w", pin, err)
	}
	l, err = link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: h.attach, Program: h.program})
	if err != nil {
		return nil, fmt.Errorf("attaching %s to cgroup %s: %w", h.name, cgroupPath, err)
	}
	if err := l.Pin(pin); err != nil {
		l.Close()
		return nil, fmt.Errorf("pinning link %s (the kernel needs bpf_link for cgroups, Linux 5.7+): %w", pin, err)
	}
	return l, nil
}

// Close releases the agent's handles. The datapath stays attached and pinned,
// so services keep working while the agent is away.
func (lb *LoadBalancer) Close() error {
	var errs []error
	for _, l := range lb.links {
		errs = append(errs, l.Close())
	}
	lb.links = nil
	errs = append(errs, lb.objs.Close())
	return errors.Join(errs...)
}

// Remove detaches the datapath and deletes its pins: services stop working.
// It is for uninstalling the node and for tests; the bpffs stays mounted.
func (lb *LoadBalancer) Remove() error {
	var errs []error
	for _, l := range lb.links {
		errs = append(errs, l.Detach()) // at once, not when the kernel drops the last pin
	}
	return errors.Join(append(errs, lb.Close(), Unpin(lb.pinDir))...)
}

// Unpin deletes the datapath's pins in pinDir, after which the kernel
// detaches its programs (asynchronously) once no agent holds them open. It needs no loaded LoadBalancer, so it also
// clears a datapath whose map layout no longer matches this build. Other
// files in pinDir are left alone.
func Unpin(pinDir string) error {
	spec, err := loadLb()
	if err != nil {
		return err
	}
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	links := filepath.Join(pinDir, "links")
	pins, err := os.ReadDir(links)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, pin := range pins {
		remove(filepath.Join(links, pin.Name()))
	}
	remove(links)
	for name := range spec.Maps {
		remove(filepath.Join(pinDir, name))
	}
	return errors.Join(errs...)
}
