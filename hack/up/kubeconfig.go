package main

import (
	"encoding/base64"
	"fmt"
	"os"
)

// kubeconfig renders a self-contained kubeconfig for one client
// certificate: the certificates are embedded, so the file can be copied.
func kubeconfig(server string, caPEM, certPEM, keyPEM []byte) string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: skiff
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: skiff
  context:
    cluster: skiff
    user: skiff
current-context: skiff
`, server, b64(caPEM), b64(certPEM), b64(keyPEM))
}

// writeKubeconfig writes the kubeconfig of the named client certificate.
func (p pki) writeKubeconfig(path, server, name string) error {
	var files [3][]byte
	for i, f := range []string{p.cert("ca"), p.cert(name), p.key(name)} {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		files[i] = data
	}
	return os.WriteFile(path, []byte(kubeconfig(server, files[0], files[1], files[2])), 0o600)
}
