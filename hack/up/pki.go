package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// certValidity is long because the local cluster's state persists across
// restarts; rotating certificates is not what `make up` is for.
const certValidity = 10 * 365 * 24 * time.Hour

// certSpec describes one certificate that the CA signs.
type certSpec struct {
	name         string // file stem under pki/
	commonName   string
	organization []string
	dnsNames     []string
	ips          []net.IP
	usage        x509.ExtKeyUsage
}

// pki holds the paths of everything the control plane and its clients need.
type pki struct {
	dir string
}

func (p pki) cert(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p pki) key(name string) string  { return filepath.Join(p.dir, name+".key") }

// clusterCerts are the certificates of the local cluster: the apiserver's
// serving certificate, for loopback, the kubernetes Service's address and
// any more addresses it listens on, and the client certificates of the
// admin and the manager.
func clusterCerts(serviceIP net.IP, moreIPs ...net.IP) []certSpec {
	return []certSpec{
		{
			name: "apiserver", commonName: "kube-apiserver",
			dnsNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			ips:      append([]net.IP{net.IPv4(127, 0, 0, 1), serviceIP}, moreIPs...),
			usage:    x509.ExtKeyUsageServerAuth,
		},
		// system:masters may do anything, as a cluster admin does.
		{name: "admin", commonName: "skiff-admin", organization: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		// The manager gets only what config/rbac grants it, as when deployed.
		{name: "manager", commonName: "system:skiff:manager", usage: x509.ExtKeyUsageClientAuth},
	}
}

// nodeAgentCert is the node agent's client certificate: user
// system:node:<node> in group system:nodes, as a kubelet's. RBAC grants
// the group, so a certificate kept from an earlier run under another node
// name still works.
func nodeAgentCert(nodeName string) certSpec {
	return certSpec{name: "nodeagent", commonName: "system:node:" + nodeName, organization: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth}
}

// nodeServingCert is a node agent's serving certificate for its logs and
// exec port, for the node's address, so that `kubectl skiff logs` and
// `exec` verify the agent with the kubeconfig's CA, as the apiserver does
// a kubelet with --kubelet-certificate-authority.
func nodeServingCert(name, nodeName string, ips []net.IP) certSpec {
	return certSpec{name: name, commonName: nodeName, dnsNames: []string{nodeName}, ips: ips, usage: x509.ExtKeyUsageServerAuth}
}

// ensure creates whatever is missing: the CA, the service-account signing
// key and each certificate. Existing files are kept, so that kubeconfigs
// handed out earlier keep working across restarts; a certificate that
// lacks a name or an address it must cover now (the apiserver's, once it
// listens on the node bridge too) is issued again by the same CA.
func (p pki) ensure(certs []certSpec) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	caCert, caKey, err := p.ensureCA()
	if err != nil {
		return err
	}
	if err := p.ensureKey("service-account"); err != nil {
		return err
	}
	for _, c := range certs {
		if p.has(c) {
			continue
		}
		if err := p.issue(c, caCert, caKey); err != nil {
			return fmt.Errorf("issuing the %s certificate: %w", c.name, err)
		}
	}
	return nil
}

// has reports whether c's certificate and key exist and the certificate
// covers every name and address c asks for.
func (p pki) has(c certSpec) bool {
	cert, _, err := loadCertAndKey(p.cert(c.name), p.key(c.name))
	return err == nil && covers(cert, c)
}

// covers reports whether cert names every DNS name and IP address of c.
func covers(cert *x509.Certificate, c certSpec) bool {
	for _, name := range c.dnsNames {
		if !slices.Contains(cert.DNSNames, name) {
			return false
		}
	}
	for _, ip := range c.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func (p pki) ensureCA() (*x509.Certificate, crypto.Signer, error) {
	if !exists(p.cert("ca")) || !exists(p.key("ca")) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := template(pkix.Name{CommonName: "skiff-ca"})
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, nil, err
		}
		if err := writeCertAndKey(p.cert("ca"), p.key("ca"), der, key); err != nil {
			return nil, nil, err
		}
	}
	return loadCertAndKey(p.cert("ca"), p.key("ca"))
}

// ensureKey creates a bare key pair, as the service-account token signer needs.
func (p pki) ensureKey(name string) error {
	if exists(p.key(name)) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(p.dir, name+".pub"), "PUBLIC KEY", pub); err != nil {
		return err
	}
	return writeKey(p.key(name), key)
}

func (p pki) issue(c certSpec, caCert *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := template(pkix.Name{CommonName: c.commonName, Organization: c.organization})
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{c.usage}
	tmpl.DNSNames, tmpl.IPAddresses = c.dnsNames, c.ips
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return err
	}
	return writeCertAndKey(p.cert(c.name), p.key(c.name), der, key)
}

func template(subject pkix.Name) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	return &x509.Certificate{SerialNumber: serial, Subject: subject, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity)}
}

func writeCertAndKey(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func loadCertAndKey(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM: " + certPath + " or " + keyPath + "; delete .skiff/pki to start afresh")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
