package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"skiff.dev/skiff/nodeagent/images"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{cert: cert, key: key}
}

// writePEM writes the CA's certificate to a file and returns its path.
func (ca testCA) writePEM(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCert is a client certificate of user in groups, as the apiserver's
// x509 authenticator reads one: CommonName and Organizations.
func (ca testCA) clientCert(t *testing.T, user string, groups ...string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: user, Organization: groups},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestClientCertificates checks the kubelet's --client-ca-file: a client
// certificate of the configured CA names the user (CommonName) and its
// groups (Organizations), who are then authorized as a token's user is;
// bearer tokens keep working beside it.
func TestClientCertificates(t *testing.T) {
	log := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(log, []byte("2026-11-25T10:00:00Z stdout F hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, other := newTestCA(t, "cluster-ca"), newTestCA(t, "another-ca")
	base := startServerWith(t, Config{NodeName: "node-certs", Runtime: logFileRuntime{path: log}, ClientCAFile: ca.writePEM(t)})
	url := base + "/containerLogs/default/" + boundPodObject(t, "node-certs", images.Busybox).Name + "/main"
	reader := serviceAccount(t, grant{"log", []string{"get"}})

	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		token string
		// force sends the certificate even when the server's list of
		// acceptable CAs lacks its issuer, which Go's client would not.
		force    bool
		wantCode int
		wantBody string
	}{
		{name: "an admin's certificate", cert: ptr.To(ca.clientCert(t, "skiff-admin", "system:masters")), wantCode: http.StatusOK, wantBody: "hello\n"},
		{name: "a certificate of a user without RBAC", cert: ptr.To(ca.clientCert(t, "nobody")), wantCode: http.StatusForbidden, wantBody: "Forbidden (user=nobody, verb=get, resource=nodes, subresource=log"},
		{name: "no certificate and no token", wantCode: http.StatusUnauthorized, wantBody: "send a bearer token (Authorization: Bearer <token>) or a client certificate signed by the cluster's CA"},
		{name: "another CA's certificate", cert: ptr.To(other.clientCert(t, "skiff-admin", "system:masters")), wantCode: http.StatusUnauthorized, wantBody: "send a bearer token"},
		{name: "another CA's certificate, sent anyway", cert: ptr.To(other.clientCert(t, "skiff-admin", "system:masters")), force: true, wantCode: http.StatusUnauthorized, wantBody: `the client certificate of "skiff-admin" is not valid here`},
		{name: "a bearer token still works", token: reader, wantCode: http.StatusOK, wantBody: "hello\n"},
		{name: "another CA's certificate beside a valid token", cert: ptr.To(other.clientCert(t, "skiff-admin")), force: true, token: reader, wantCode: http.StatusOK, wantBody: "hello\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsConfig := &tls.Config{InsecureSkipVerify: true}
			if tc.cert != nil {
				tlsConfig.Certificates = []tls.Certificate{*tc.cert}
			}
			if tc.force {
				tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}
