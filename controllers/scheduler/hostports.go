package scheduler

// hostPorts refuses nodes where a port the pod wants on the host is taken:
// same protocol and port, on the same address or on the wildcard address.
type hostPorts struct{}

func (hostPorts) Name() string { return "NodePorts" }

const hostPortsReason = "node(s) didn't have free ports for the requested pod ports"

func (hostPorts) Filter(s *cycleState, n *NodeInfo) *Status {
	if len(s.pod.ports) == 0 || len(n.usedPorts) == 0 {
		return nil
	}
	for _, want := range s.pod.ports {
		for used := range n.usedPorts {
			if portsConflict(want, used) {
				return resolvable(hostPortsReason)
			}
		}
	}
	return nil
}

func portsConflict(a, b hostPort) bool {
	if a.port != b.port || a.protocol != b.protocol {
		return false
	}
	return a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0"
}
