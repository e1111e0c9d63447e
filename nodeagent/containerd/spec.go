package containerd

import (
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/volumes"
)

// cpuPeriod is the CFS period a CPU limit is a quota of, as the kubelet's.
const cpuPeriod = 100000

// specOpts builds a container's OCI spec: the image's config with the
// pod's command, env and working directory over it; the pod's network
// namespace, hostname and /etc files; volumes; resources as cgroup limits;
// and the security context.
func (r *Runtime) specOpts(pod *skiffcorev1.Pod, c *corev1.Container, sb *sandbox, img containerd.Image, env []string, mounts []specs.Mount, id string) []oci.SpecOpts {
	// $(VAR) in command and args expands from the container's env, as
	// upstream does.
	command, args := volumes.ExpandCommand(c.Command, env), volumes.ExpandCommand(c.Args, env)
	opts := []oci.SpecOpts{oci.WithImageConfigArgs(img, args)}
	if len(command) > 0 {
		opts = append(opts, oci.WithProcessArgs(append(command, args...)...))
	}
	if c.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(c.WorkingDir))
	}
	opts = append(opts,
		oci.WithEnv(append([]string{"HOSTNAME=" + sb.Hostname}, env...)),
		oci.WithHostname(sb.Hostname),
		oci.WithMounts(append(etcMounts(sb), mounts...)),
		oci.WithCgroup(r.cgroupParent(pod.UID)+"/"+id),
	)
	if sb.NetNS != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNS}))
	} else {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	opts = append(opts, resourceOpts(c.Resources)...)
	return append(opts, securityOpts(pod.Spec.SecurityContext, c.SecurityContext)...)
}

// etcMounts puts the pod's hosts, hostname and resolv.conf into a
// container, as the kubelet does.
func etcMounts(sb *sandbox) []specs.Mount {
	bind := func(src, dst string) specs.Mount {
		return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", "rprivate", "rw"}}
	}
	return []specs.Mount{
		bind(sb.Hosts, "/etc/hosts"),
		bind(sb.HostnameFile, "/etc/hostname"),
		bind(sb.ResolvConf, "/etc/resolv.conf"),
	}
}

// resourceOpts turns requests and limits into cgroup settings as the
// kubelet does: the CPU request into shares, the CPU limit into a CFS
// quota, and the memory limit into a hard limit.
func resourceOpts(res corev1.ResourceRequirements) []oci.SpecOpts {
	var opts []oci.SpecOpts
	cpuReq, hasReq := res.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := res.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		// The apiserver defaults a missing request to the limit.
		cpuReq, hasReq = cpuLim, true
	}
	if hasReq {
		opts = append(opts, oci.WithCPUShares(milliCPUToShares(cpuReq.MilliValue())))
	}
	if hasLim {
		opts = append(opts, oci.WithCPUCFS(milliCPUToQuota(cpuLim.MilliValue()), cpuPeriod))
	}
	if mem, ok := res.Limits[corev1.ResourceMemory]; ok && mem.Value() > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(mem.Value())))
	}
	return opts
}

// milliCPUToShares is the kubelet's conversion: 1 CPU is 1024 shares, and
// no container gets fewer than 2.
func milliCPUToShares(milli int64) uint64 {
	return uint64(max(milli*1024/1000, 2))
}

// milliCPUToQuota is the CFS quota of a CPU limit over cpuPeriod, at least
// 1 ms as the kernel requires.
func milliCPUToQuota(milli int64) int64 {
	return max(milli*cpuPeriod/1000, 1000)
}

// securityOpts applies the pod's and the container's security context;
// the container's settings win. Containers are unprivileged unless they
// ask, with containerd's default capabilities.
func securityOpts(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) []oci.SpecOpts {
	var opts []oci.SpecOpts
	uid, gid := runAs(pod, c)
	switch {
	case uid != nil && gid != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		opts = append(opts, oci.WithUserID(uint32(*uid)))
	case gid != nil:
		opts = append(opts, oci.WithUIDGID(0, uint32(*gid)))
	}
	if pod != nil && len(pod.SupplementalGroups) > 0 {
		groups := make([]string, 0, len(pod.SupplementalGroups))
		for _, g := range pod.SupplementalGroups {
			groups = append(groups, itoa(g))
		}
		opts = append(opts, oci.WithAppendAdditionalGroups(groups...))
	}
	if c == nil {
		return opts
	}
	if c.Privileged != nil && *c.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	}
	if c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if caps := c.Capabilities; caps != nil {
		drop := capNames(caps.Drop)
		if len(drop) == 1 && drop[0] == "CAP_ALL" {
			opts = append(opts, oci.WithCapabilities(nil))
		} else if len(drop) > 0 {
			opts = append(opts, oci.WithDroppedCapabilities(drop))
		}
		if add := capNames(caps.Add); len(add) > 0 {
			opts = append(opts, oci.WithAddedCapabilities(add))
		}
	}
	return opts
}

// runAs is the user and group a container runs as.
func runAs(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) (uid, gid *int64) {
	if pod != nil {
		uid, gid = pod.RunAsUser, pod.RunAsGroup
	}
	if c != nil {
		if c.RunAsUser != nil {
			uid = c.RunAsUser
		}
		if c.RunAsGroup != nil {
			gid = c.RunAsGroup
		}
	}
	return uid, gid
}

// capNames turns Kubernetes capability names ("NET_ADMIN") into the
// kernel's ("CAP_NET_ADMIN").
func capNames(caps []corev1.Capability) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		n := strings.ToUpper(string(c))
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		out = append(out, n)
	}
	return out
}
