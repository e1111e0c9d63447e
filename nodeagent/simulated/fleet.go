package simulated

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"skiff.dev/skiff/nodeagent"
)

// Fleet describes a set of identical simulated nodes, as
// `nodeagent --simulate=N` hosts them. A test that needs nodes runs them
// in-process:
//
//	nodes, _ := simulated.Fleet{Prefix: "sim", Count: 3}.Nodes()
//	host, _ := nodeagent.NewHost(cfg, nodeagent.Options{Nodes: nodes, NewRuntime: simulated.Runtimes(simulated.Options{})})
//	go host.Start(ctx)
//	...
//	host.StopNode("sim-0001") // the node "loses power"
type Fleet struct {
	// Prefix names the nodes PREFIX-0000, PREFIX-0001, ...; "sim" when empty.
	Prefix string
	// Count is how many nodes.
	Count int
	// Capacity is each node's; 32 CPUs, 256Gi and 110 pods when nil.
	Capacity corev1.ResourceList
	// NodeCIDR is the range the nodes' InternalIPs come from, one each in
	// order; 10.200.0.0/16 when empty.
	NodeCIDR string
	// OSImage and KernelVersion describe the machines; this host's when empty.
	OSImage       string
	KernelVersion string
}

// DefaultCapacity is a simulated node's capacity unless told otherwise: a
// large machine, so that tests are limited by what they ask for.
func DefaultCapacity() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   *resource.NewQuantity(nodeagent.DefaultMaxPods, resource.DecimalSI),
	}
}

// Nodes describes the fleet's nodes. Each keeps its machine ID and system
// UUID across restarts (they derive from its name); all share this
// process's boot ID.
func (f Fleet) Nodes() ([]nodeagent.NodeConfig, error) {
	if f.Prefix == "" {
		f.Prefix = "sim"
	}
	if f.Capacity == nil {
		f.Capacity = DefaultCapacity()
	}
	if f.NodeCIDR == "" {
		f.NodeCIDR = "10.200.0.0/16"
	}
	if f.OSImage == "" {
		f.OSImage = nodeagent.HostOSImage()
	}
	if f.KernelVersion == "" {
		f.KernelVersion = nodeagent.HostKernelVersion()
	}
	prefix, err := netip.ParsePrefix(f.NodeCIDR)
	if err != nil {
		return nil, fmt.Errorf("node CIDR: %w", err)
	}
	bootID := uuid(fmt.Sprintf("boot/%d/%d", os.Getpid(), time.Now().UnixNano()))
	nodes := make([]nodeagent.NodeConfig, 0, f.Count)
	ip := prefix.Masked().Addr()
	for i := range f.Count {
		ip = ip.Next()
		if !prefix.Contains(ip) {
			return nil, fmt.Errorf("node CIDR %s is too small for %d nodes", prefix, f.Count)
		}
		name := fmt.Sprintf("%s-%04d", f.Prefix, i)
		nodes = append(nodes, nodeagent.NodeConfig{
			Name:          name,
			InstanceType:  "simulated",
			InternalIP:    ip.String(),
			Capacity:      f.Capacity.DeepCopy(),
			OSImage:       f.OSImage,
			KernelVersion: f.KernelVersion,
			MachineID:     hexID("machine/" + name)[:32],
			SystemUUID:    uuid("uuid/" + name),
			BootID:        bootID,
		})
	}
	return nodes, nil
}

// Runtimes makes one simulated runtime per node, all with opts.
func Runtimes(opts Options) func(node string) nodeagent.Runtime {
	return func(string) nodeagent.Runtime { return New(opts) }
}

func hexID(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

func uuid(seed string) string {
	h := hexID(seed)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
