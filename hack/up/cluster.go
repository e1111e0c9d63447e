package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// builtinWorkloadsOff switches off the built-in kinds that skiff replaces and
// that no controller serves here, so that `kubectl get deployments` reaches
// skiff's Deployments and an apps/v1 manifest fails loudly instead of being
// stored and never run. Pods, Services and Nodes cannot be switched off, nor
// discovery.k8s.io EndpointSlices, which the apiserver itself watches; the
// policy in config/local refuses built-in Pods and Services instead.
var builtinWorkloadsOff = []string{
	"apps/v1/deployments", "apps/v1/replicasets", "apps/v1/statefulsets", "apps/v1/daemonsets",
	"batch/v1/jobs", "batch/v1/cronjobs",
}

func (u *up) startEtcd() (*child, error) {
	client := fmt.Sprintf("http://127.0.0.1:%d", u.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", u.etcdPort+1)
	c, err := start("etcd", u.logDir(), u.bin("etcd"),
		"--name=skiff", "--data-dir="+u.path("etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=skiff="+peer)
	if err != nil {
		return nil, err
	}
	return c, u.waitHealthy(c, http.DefaultClient, client+"/health")
}

func (u *up) startAPIServer() (*child, error) {
	p := u.pki()
	runtimeConfig := make([]string, 0, len(builtinWorkloadsOff))
	for _, r := range builtinWorkloadsOff {
		runtimeConfig = append(runtimeConfig, r+"=false")
	}
	c, err := start("kube-apiserver", u.logDir(), u.bin("kube-apiserver"),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", u.etcdPort),
		fmt.Sprintf("--secure-port=%d", u.port),
		"--bind-address="+u.apiserverAddress(), "--advertise-address="+u.apiserverAddress(),
		// The apiserver listens on loopback or on the node bridge only,
		// which the kubernetes Service would not lead pods to anyway.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+p.cert("apiserver"), "--tls-private-key-file="+p.key("apiserver"),
		"--client-ca-file="+p.cert("ca"),
		"--authorization-mode=RBAC",
		"--service-account-key-file="+p.dir+"/service-account.pub",
		"--service-account-signing-key-file="+p.key("service-account"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+u.serviceCIDR,
		"--allow-privileged=true",
		"--runtime-config="+strings.Join(runtimeConfig, ","),
		"--cert-dir="+u.path("pki", "apiserver-generated"))
	if err != nil {
		return nil, err
	}
	httpClient, err := u.adminHTTPClient()
	if err != nil {
		return nil, err
	}
	return c, u.waitHealthy(c, httpClient, u.server()+"/readyz")
}

func (u *up) startManager() (*child, error) {
	c, err := start("manager", u.logDir(), u.manager,
		"--kubeconfig="+u.path("manager.kubeconfig"),
		"--leader-elect", "--leader-election-namespace=skiff-system",
		"--cluster-cidr="+u.clusterCIDR,
		"--service-cluster-ip-range="+u.serviceCIDR,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", u.managerPort+1),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", u.managerPort))
	if err != nil {
		return nil, err
	}
	return c, u.waitHealthy(c, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/readyz", u.managerPort+1))
}

// installCRDs applies skiff's CRDs server-side (they are too large for the
// last-applied annotation of a client-side apply) and waits until they serve.
func (u *up) installCRDs() error {
	crds := "config/crd/bases"
	if err := u.kubectl("apply", "--server-side", "--force-conflicts", "-f", crds); err != nil {
		return err
	}
	return u.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
}

// grantManager gives the manager's and the node agent's local users their
// roles; config/local holds the node agent's.
func (u *up) grantManager() error {
	if err := u.kubectl("apply", "-k", "config/local"); err != nil {
		return err
	}
	return u.kubectl("apply", "-k", "config/rbac")
}

// kubectl runs bin/kubectl as the admin and returns its output in the error.
func (u *up) kubectl(args ...string) error {
	_, err := u.kubectlOutput(args...)
	return err
}

// kubectlOutput runs bin/kubectl as the admin and returns what it printed.
func (u *up) kubectlOutput(args ...string) (string, error) {
	cmd := exec.Command(u.bin("kubectl"), append([]string{"--kubeconfig=" + u.path("kubeconfig")}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// waitHealthy polls url until it answers 200, the child exits, or the
// start-up time runs out.
func (u *up) waitHealthy(c *child, httpClient *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(u.ctx, u.startTimeout)
	defer cancel()
	for {
		if c.exited() {
			return c.failure()
		}
		if resp, err := httpClient.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if u.ctx.Err() != nil {
				return u.ctx.Err()
			}
			return fmt.Errorf("%s did not become healthy at %s within %s; the end of %s:\n%s", c.name, url, u.startTimeout, c.log, tail(c.log, 15))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// adminHTTPClient talks TLS to the apiserver as the admin.
func (u *up) adminHTTPClient() (*http.Client, error) {
	p := u.pki()
	caPEM, err := os.ReadFile(p.cert("ca"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(p.cert("admin"), p.key("admin"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}
