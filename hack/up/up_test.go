package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAcquireLock(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		holder  string // contents of the lock before we try
		wantErr error
	}{
		{"no lock", "", nil},
		{"stale lock of a dead process", strconv.Itoa(dead.Process.Pid), nil},
		{"garbage in the lock", "not a pid", nil},
		{"lock of a live process", strconv.Itoa(os.Getppid()), errRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "up.pid")
			if tc.holder != "" {
				if err := os.WriteFile(path, []byte(tc.holder), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := acquireLock(path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("acquireLock = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "kill "+tc.holder) {
				t.Errorf("the refusal does not say how to stop the holder: %v", err)
			}
			if err == nil {
				if pid, _ := readPid(path); pid != os.Getpid() {
					t.Errorf("the lock holds %d, want our pid %d", pid, os.Getpid())
				}
				releaseLock(path)
				if exists(path) {
					t.Error("releaseLock left the lock behind")
				}
			}
		})
	}
}

func TestPKIIssuesWhatTheClusterNeeds(t *testing.T) {
	p := pki{dir: t.TempDir()}
	serviceIP := firstServiceIP("10.96.0.0/16")
	if err := p.ensure(clusterCerts(serviceIP)); err != nil {
		t.Fatal(err)
	}
	server := readCert(t, p.cert("apiserver"))
	for _, name := range []string{"localhost", "kubernetes.default.svc.cluster.local"} {
		if err := server.VerifyHostname(name); err != nil {
			t.Errorf("the serving certificate does not cover %s: %v", name, err)
		}
	}
	for _, ip := range []string{"127.0.0.1", "10.96.0.1"} {
		if err := server.VerifyHostname(ip); err != nil {
			t.Errorf("the serving certificate does not cover %s: %v", ip, err)
		}
	}
	admin := readCert(t, p.cert("admin"))
	if len(admin.Subject.Organization) != 1 || admin.Subject.Organization[0] != "system:masters" {
		t.Errorf("the admin is not in system:masters: %v", admin.Subject)
	}
	if manager := readCert(t, p.cert("manager")); manager.Subject.CommonName != "system:skiff:manager" || len(manager.Subject.Organization) != 0 {
		t.Errorf("the manager's identity is %v, want user system:skiff:manager with no groups", manager.Subject)
	}
	if err := p.ensure([]certSpec{nodeAgentCert("box")}); err != nil {
		t.Fatal(err)
	}
	if agent := readCert(t, p.cert("nodeagent")); agent.Subject.CommonName != "system:node:box" ||
		len(agent.Subject.Organization) != 1 || agent.Subject.Organization[0] != "system:nodes" {
		t.Errorf("the node agent's identity is %v, want user system:node:box in group system:nodes", agent.Subject)
	}
	ca := readCert(t, p.cert("ca"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := admin.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the admin certificate does not chain to the CA: %v", err)
	}
	if !exists(filepath.Join(p.dir, "service-account.pub")) || !exists(p.key("service-account")) {
		t.Error("no service-account signing key pair")
	}

	// A second run keeps what exists, so handed-out kubeconfigs stay valid.
	before, _ := os.ReadFile(p.cert("admin"))
	if err := p.ensure(clusterCerts(serviceIP)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(p.cert("admin")); string(after) != string(before) {
		t.Error("a second run replaced the admin certificate")
	}
}

func TestKubeconfigEmbedsEverything(t *testing.T) {
	got := kubeconfig("https://127.0.0.1:6443", []byte("CA"), []byte("CERT"), []byte("KEY"))
	for _, want := range []string{
		"server: https://127.0.0.1:6443",
		"certificate-authority-data: Q0E=",
		"client-certificate-data: Q0VSVA==",
		"client-key-data: S0VZ",
		"current-context: skiff",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, got)
		}
	}
}

func TestFirstServiceIP(t *testing.T) {
	cases := map[string]string{"10.96.0.0/16": "10.96.0.1", "172.20.0.0/24": "172.20.0.1", "garbage": "10.96.0.1"}
	for cidr, want := range cases {
		if got := firstServiceIP(cidr); !got.Equal(net.ParseIP(want)) {
			t.Errorf("firstServiceIP(%q) = %v, want %s", cidr, got, want)
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
