package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// kubeDNS is the kube-dns Service pods' resolv.conf names: it reserves the
// address in the service range (the allocator will give it to no other
// Service), and each node agent answers it on its own node.
const kubeDNS = `apiVersion: core.skiff.dev/v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: %s
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
`

// clusterDNS is the kube-dns address: the tenth of the service range, as
// kubeadm chooses.
func (u *up) clusterDNS() string {
	_, ipnet, err := net.ParseCIDR(u.serviceCIDR)
	if err != nil {
		return "10.96.0.10"
	}
	ip := ipnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+10).String()
}

// applyKubeDNS creates the kube-dns Service.
func (u *up) applyKubeDNS() error {
	path := filepath.Join(u.stateDir, "kube-dns.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(kubeDNS, u.clusterDNS())), 0o644); err != nil {
		return err
	}
	return u.kubectl("apply", "-f", path)
}
