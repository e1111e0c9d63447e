// Package containerd is the node agent's real container runtime: it runs a
// pod's containers through containerd and runc, each pod in a network
// namespace of its own set up through CNI. Everything it knows of a pod is
// kept in containerd (labels on the containers), so the agent can restart
// while pods run and adopt them.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent"
	"skiff.dev/skiff/nodeagent/prober"
)

// DefaultNamespace is the containerd namespace skiff keeps its containers
// in, apart from anything else the daemon runs.
const DefaultNamespace = "skiff"

// DefaultCgroupRoot is the cgroup skiff's pods live under.
const DefaultCgroupRoot = "/skiff"

// Config says where the runtime finds containerd and keeps its files, and
// which parts set up a pod's network, volumes and images.
type Config struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the containerd namespace (DefaultNamespace).
	Namespace string
	// CgroupRoot is the cgroup the pods' cgroups live under, in every
	// hierarchy (DefaultCgroupRoot). Nodes that share a machine each
	// have their own, which their eBPF datapath attaches to.
	CgroupRoot string
	// NodeCgroup is the cgroup whose usage is the node's in the stats
	// summary ("" is the whole machine's root, as for one node per
	// machine). Nodes that share a machine each name their own, so that
	// `top node` tells them apart.
	NodeCgroup string
	// Dir holds the pods' files (hosts, resolv.conf) and logs.
	Dir string
	// Network gives pods their network namespace and address. Nil runs
	// every pod in the host's network, for tests of the runtime alone.
	Network Network
	// Files materialises volumes and resolves env; nil resolves plain env
	// values only and mounts no volumes. UseAPI sets it.
	Files PodFiles
	// Allocatable is the node's allocatable resources, which env and
	// downward API volumes report for containers without limits.
	Allocatable corev1.ResourceList
	// ClusterDNS is the nameserver pods with dnsPolicy ClusterFirst use
	// (the kube-dns Service's address), and ClusterDomain the cluster's
	// DNS domain. Without ClusterDNS, pods get the host's resolv.conf.
	ClusterDNS    string
	ClusterDomain string
	// Images makes a container's image present, as its imagePullPolicy
	// says; nil uses only images already in containerd.
	Images Images
	// LogDriver is the program the shims run to write container logs:
	// normally the agent's own executable (see RunLogDriverIfAsked).
	LogDriver string
	// Clock is the runtime's time; the real clock when nil.
	Clock clock.PassiveClock
}

// Network gives a pod its network namespace and address through CNI.
type Network interface {
	SetPodCIDR(cidr string) error
	// Status is nil once pods can get addresses, and else says why not.
	Status() error
	// Setup returns the pod's network namespace path and IP, creating them
	// on first call; later calls return the same.
	Setup(ctx context.Context, pod *skiffcorev1.Pod) (netns, ip string, err error)
	// Teardown releases them; it is a no-op for a pod without any.
	Teardown(ctx context.Context, uid types.UID) error
	// List names the pods that have network state, so that what a pod
	// without containers held is found after a restart too.
	List() ([]types.UID, error)
}

// PodFiles makes a pod's volumes and its containers' environment.
type PodFiles interface {
	// Mounts sets up the pod's volumes (idempotently) and returns the
	// mounts of one container.
	Mounts(ctx context.Context, pod *skiffcorev1.Pod, container *corev1.Container, podIP string) ([]specs.Mount, error)
	// Env is the container's environment, "NAME=value".
	Env(ctx context.Context, pod *skiffcorev1.Pod, container *corev1.Container, podIP, hostIP string) ([]string, error)
	// Update rewrites the pod's ConfigMap, Secret and downward API files
	// whose content changed, so that running containers see it.
	Update(ctx context.Context, pod *skiffcorev1.Pod) error
	// Teardown removes what the pod's volumes hold on the node.
	Teardown(ctx context.Context, uid types.UID) error
}

// Images makes images present in containerd.
type Images interface {
	Ensure(ctx context.Context, client *containerd.Client, pod *skiffcorev1.Pod, c *corev1.Container) (containerd.Image, error)
	// RetryAt is when a container whose image failed may try again.
	RetryAt(pod *skiffcorev1.Pod, c *corev1.Container) time.Time
}

// Runtime runs pods through containerd. It is safe for concurrent use; the
// agent syncs a pod from one worker at a time.
type Runtime struct {
	cfg    Config
	client *containerd.Client
	clock  clock.PassiveClock
	hostIP string

	// probes runs the containers' probes; pods maps the UIDs of the
	// pods it probes to their names.
	probes *prober.Manager
	pods   sync.Map
	// backoffTold remembers the crash back-offs already reported.
	backoffTold sync.Map

	mu     sync.Mutex
	notify func(nodeagent.RuntimePod)
	events events.EventRecorder
}

var _ nodeagent.Runtime = &Runtime{}

// New connects to containerd. hostIP is the node's address, for pods in
// the host network and for status.hostIP in the environment.
func New(cfg Config, hostIP string) (*Runtime, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = DefaultCgroupRoot
	}
	if !filepath.IsAbs(cfg.CgroupRoot) {
		return nil, fmt.Errorf("containerd runtime: Config.CgroupRoot %q must be an absolute cgroup path", cfg.CgroupRoot)
	}
	if cfg.NodeCgroup != "" && !filepath.IsAbs(cfg.NodeCgroup) {
		return nil, fmt.Errorf("containerd runtime: Config.NodeCgroup %q must be an absolute cgroup path, or empty for the whole machine", cfg.NodeCgroup)
	}
	if cfg.Dir == "" {
		return nil, errors.New("containerd runtime: Config.Dir must name a directory for pod files and logs")
	}
	if cfg.LogDriver == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the log driver: %w", err)
		}
		cfg.LogDriver = exe
	}
	if _, err := os.Stat(cfg.Address); err != nil {
		return nil, fmt.Errorf("no containerd listens on %s: start one (`make up` does) or pass its socket: %w", cfg.Address, err)
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w (is it running? `make up` starts one)", cfg.Address, err)
	}
	r := &Runtime{cfg: cfg, client: client, clock: cfg.Clock, hostIP: hostIP}
	r.probes = prober.NewManager(clock.RealClock{}, r.probeChanged)
	return r, nil
}

// Client is the runtime's containerd client, for loading images.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Close closes the connection to containerd; the containers run on.
func (r *Runtime) Close() error { return r.client.Close() }

// ctx puts the runtime's namespace on a context.
func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// Version names containerd and its version for the Node's nodeInfo.
func (r *Runtime) Version() string {
	v, err := r.client.Version(r.ctx(context.Background()))
	if err != nil {
		return "containerd://unknown"
	}
	return "containerd://" + v.Version
}

// UpdatePodCIDR passes the node's podCIDR to the network.
func (r *Runtime) UpdatePodCIDR(cidr string) error {
	if r.cfg.Network == nil || cidr == "" {
		return nil
	}
	return r.cfg.Network.SetPodCIDR(cidr)
}

// NetworkReady reports whether the pod network can give pods addresses.
func (r *Runtime) NetworkReady() error {
	if r.cfg.Network == nil {
		return nil
	}
	return r.cfg.Network.Status()
}

// podContainers lists a pod's containers, every run of every container.
func (r *Runtime) podContainers(ctx context.Context, uid types.UID) ([]containerd.Container, error) {
	return r.client.Containers(ctx, fmt.Sprintf(`labels.%q==%q`, labelPodUID, string(uid)))
}

// ListPods lists the pods that have containers in skiff's namespace.
func (r *Runtime) ListPods(ctx context.Context) ([]nodeagent.RuntimePod, error) {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx, fmt.Sprintf(`labels.%q`, labelPodUID))
	if err != nil {
		return nil, err
	}
	seen := map[types.UID]nodeagent.RuntimePod{}
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		uid := types.UID(info.Labels[labelPodUID])
		seen[uid] = nodeagent.RuntimePod{UID: uid, Namespace: info.Labels[labelPodNamespace], Name: info.Labels[labelPodName]}
	}
	if r.cfg.Network != nil {
		// A pod whose containers were never created (its image could not
		// be had) may still hold an address; its name is not known here.
		uids, err := r.cfg.Network.List()
		if err != nil {
			return nil, err
		}
		for _, uid := range uids {
			if _, ok := seen[uid]; !ok {
				seen[uid] = nodeagent.RuntimePod{UID: uid}
			}
		}
	}
	out := make([]nodeagent.RuntimePod, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, nil
}

// RemovePod removes everything of a killed pod from the node: its network,
// volumes, files, logs and cgroups, and last its containers with their
// snapshots. The containers are the pod's record in containerd, so they go
// last: a RemovePod cut short leaves the pod listed, and the next agent
// finishes the job.
func (r *Runtime) RemovePod(ctx context.Context, uid types.UID) error {
	ctx, cancel := uninterrupted(r.ctx(ctx))
	defer cancel()
	r.untrackPod(uid)
	var errs []error
	if r.cfg.Network != nil {
		errs = append(errs, r.cfg.Network.Teardown(ctx, uid))
	}
	if r.cfg.Files != nil {
		errs = append(errs, r.cfg.Files.Teardown(ctx, uid))
	}
	errs = append(errs, os.RemoveAll(r.podDir(uid)), r.removeLogs(ctx, uid), r.removePodCgroups(uid))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cs, err := r.podContainers(ctx, uid)
	if err != nil {
		return err
	}
	for _, c := range cs {
		errs = append(errs, deleteContainer(ctx, c))
	}
	return errors.Join(errs...)
}

// removeLogs removes the pod's log directory, found from its containers'
// labels since the pod object may be gone.
func (r *Runtime) removeLogs(ctx context.Context, uid types.UID) error {
	cs, err := r.podContainers(ctx, uid)
	if err != nil || len(cs) == 0 {
		return err
	}
	l, err := cs[0].Labels(ctx)
	if err != nil {
		return err
	}
	pod := &skiffcorev1.Pod{}
	pod.UID, pod.Namespace, pod.Name = uid, l[labelPodNamespace], l[labelPodName]
	return os.RemoveAll(r.logDir(pod))
}

// deleteContainer deletes a container, its task and its snapshot.
func deleteContainer(ctx context.Context, c containerd.Container) error {
	ctx, cancel := uninterrupted(ctx)
	defer cancel()
	if t, err := c.Task(ctx, nil); err == nil {
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("deleting task of container %s: %w", c.ID(), err)
		}
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("deleting container %s: %w", c.ID(), err)
	}
	return nil
}

// cleanupTimeout bounds a clean-up step that goes on after its caller's
// context has ended.
const cleanupTimeout = 30 * time.Second

// uninterrupted detaches a clean-up step from its caller's cancellation, so
// that an agent that stops mid-way leaves no half-done work: a task delete
// cut short can leave containerd without the task but with its shim still
// running, an orphan that nothing finds again, and a CNI DEL cut short
// leaves the pod's rules behind.
func uninterrupted(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// podsDir holds a directory per pod: its /etc files and its volumes.
func (r *Runtime) podsDir() string { return filepath.Join(r.cfg.Dir, "pods") }

// podDir holds a pod's files: /etc/hosts, /etc/hostname, resolv.conf.
func (r *Runtime) podDir(uid types.UID) string {
	return filepath.Join(r.podsDir(), string(uid))
}

// logDir holds a pod's container logs, as the kubelet's /var/log/pods.
func (r *Runtime) logDir(pod *skiffcorev1.Pod) string {
	return filepath.Join(r.cfg.Dir, "logs", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// LogPath is the file a container's attempt-th run logs to.
func (r *Runtime) LogPath(pod *skiffcorev1.Pod, container string, attempt int) string {
	return filepath.Join(r.logDir(pod), container, fmt.Sprintf("%d.log", attempt))
}

// cgroupParent is the cgroup every container of a pod lives under, so that
// the pod's cgroups can be found and removed together.
func (r *Runtime) cgroupParent(uid types.UID) string {
	return path.Join(r.cfg.CgroupRoot, "pod"+strings.ReplaceAll(string(uid), "-", "_"))
}

// removePodCgroups removes the pod's cgroup in every v1 hierarchy (runc
// removes each container's own, not their parent).
func (r *Runtime) removePodCgroups(uid types.UID) error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", r.cgroupParent(uid)))
	var errs []error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
