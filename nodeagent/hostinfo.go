package nodeagent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultMaxPods is how many pods a node takes unless told otherwise, as
// upstream's kubelet.
const DefaultMaxPods = 110

// HostCapacity reads the machine's capacity: its CPUs, its memory from
// /proc/meminfo, and maxPods pods.
func HostCapacity(maxPods int) (corev1.ResourceList, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return nil, fmt.Errorf("reading the host's memory: %w", err)
	}
	defer f.Close()
	mem, err := parseMemTotal(f)
	if err != nil {
		return nil, err
	}
	return capacity(goruntime.NumCPU(), mem, maxPods), nil
}

// capacity is the resource list of a machine with cpus CPUs, memBytes of
// memory and room for maxPods pods.
func capacity(cpus int, memBytes int64, maxPods int) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(cpus), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(memBytes, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
	}
}

// parseMemTotal reads MemTotal, in bytes, from the text of /proc/meminfo
// ("MemTotal:       16384256 kB").
func parseMemTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("/proc/meminfo: MemTotal is %q, not a positive number", fields[1])
		}
		unit := int64(1)
		if len(fields) > 2 {
			switch strings.ToLower(fields[2]) {
			case "kb":
				unit = 1024
			case "mb":
				unit = 1024 * 1024
			default:
				return 0, fmt.Errorf("/proc/meminfo: MemTotal has unknown unit %q", fields[2])
			}
		}
		return n * unit, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemTotal line")
}

// Allocatable is what pods may use: capacity minus what is reserved for
// the system, never below zero.
func Allocatable(capacity, reserved corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	for name, r := range reserved {
		q, ok := out[name]
		if !ok {
			continue
		}
		q.Sub(r)
		if q.Sign() < 0 {
			q = *resource.NewQuantity(0, q.Format)
		}
		out[name] = q
	}
	return out
}

// HostOSImage is the machine's operating system as /etc/os-release names
// it (PRETTY_NAME), or "Unknown" as upstream says when it cannot tell.
func HostOSImage() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Unknown"
	}
	defer f.Close()
	return parseOSRelease(f)
}

// parseOSRelease returns PRETTY_NAME from the text of an os-release file.
func parseOSRelease(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "PRETTY_NAME="); ok {
			if unq, err := strconv.Unquote(v); err == nil {
				return unq
			}
			return strings.Trim(v, `'"`)
		}
	}
	return "Unknown"
}

// HostKernelVersion is the running kernel's release, as `uname -r` prints it.
func HostKernelVersion() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Unknown"
	}
	return strings.TrimSpace(string(data))
}

// HostIP is the machine's first global unicast IPv4 address, or 127.0.0.1
// when it has none.
func HostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.To4() != nil && ipnet.IP.IsGlobalUnicast() {
				return ipnet.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// HostMachineID, HostSystemUUID and HostBootID identify the machine and
// its current boot, as the kubelet reports them; empty when unreadable
// (the product UUID is readable by root only).
func HostMachineID() string  { return readTrimmed("/etc/machine-id") }
func HostSystemUUID() string { return readTrimmed("/sys/class/dmi/id/product_uuid") }
func HostBootID() string     { return readTrimmed("/proc/sys/kernel/random/boot_id") }

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
