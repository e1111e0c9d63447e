package podio

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/kubectlskiff/cli"
)

// defaultAgentPort is the kubelet's port, which a Node that reports no
// daemonEndpoints is served on.
const defaultAgentPort = 10250

// agentEndpoint is the base URL of a node's agent: https at the Node's
// InternalIP (else its ExternalIP) and its kubelet endpoint's port, where
// the apiserver would call a kubelet.
func agentEndpoint(n *skiffcorev1.Node) (string, error) {
	var host string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return "", fmt.Errorf("node %s reports no InternalIP in status.addresses: is its node agent running?", n.Name)
	}
	port := int(n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = defaultAgentPort
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// AgentEndpoint is the base URL of a node's agent, for the commands of
// other packages that call the agents (top).
func AgentEndpoint(n *skiffcorev1.Node) (string, error) { return agentEndpoint(n) }

// AgentClient is an HTTP client to the node agents with the kubeconfig's
// credentials (see agentConfig), for the commands of other packages.
func AgentClient(f *cli.Factory, insecure bool) (*http.Client, error) {
	cfg, err := agentConfig(f, insecure)
	if err != nil {
		return nil, err
	}
	return rest.HTTPClientFor(cfg)
}

// AgentError is an agent's refusal of a request (see agentError).
func AgentError(resp *http.Response) error { return agentError(resp) }

// podAgent finds the agent of the node a pod runs on.
func podAgent(ctx context.Context, c client.Reader, p *skiffcorev1.Pod) (string, error) {
	if p.Spec.NodeName == "" {
		return "", fmt.Errorf("pod %s does not have a host assigned", p.Name)
	}
	n := &skiffcorev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: p.Spec.NodeName}, n); err != nil {
		return "", fmt.Errorf("getting node %s of pod %s: %w", p.Spec.NodeName, p.Name, err)
	}
	return agentEndpoint(n)
}

// agentConfig is the kubeconfig's connection made for the node agents: the
// same credentials (client certificate or bearer token) and CA, which make
// up signs the agents' serving certificates with; insecure skips verifying
// them, as kubectl's --insecure-skip-tls-verify-backend has the apiserver
// do with a kubelet's.
func agentConfig(f *cli.Factory, insecure bool) (*rest.Config, error) {
	cfg, err := f.Flags.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.Host, c.APIPath = "", ""
	// The apiserver's name, when the kubeconfig sets one, is not the
	// agent's.
	c.TLSClientConfig.ServerName = ""
	if insecure {
		c.TLSClientConfig.Insecure = true
		c.TLSClientConfig.CAFile, c.TLSClientConfig.CAData = "", nil
	}
	// Follows and exec sessions last as long as the user wants.
	c.Timeout = 0
	return c, nil
}

// logOptions are the options of /containerLogs, as PodLogOptions.
type logOptions struct {
	follow, previous, timestamps bool
	tail                         int64 // -1: every line
	since                        time.Duration
	limitBytes                   int64
}

// logsURL is the agent's URL of a container's log.
func logsURL(base string, p *skiffcorev1.Pod, container string, o logOptions) string {
	q := url.Values{}
	for name, on := range map[string]bool{"follow": o.follow, "previous": o.previous, "timestamps": o.timestamps} {
		if on {
			q.Set(name, "true")
		}
	}
	if o.tail >= 0 {
		q.Set("tailLines", strconv.FormatInt(o.tail, 10))
	}
	if o.since > 0 {
		// Rounded up, as kubectl does, so that --since=1ms is one second.
		q.Set("sinceSeconds", strconv.FormatInt(int64((o.since+time.Second-1)/time.Second), 10))
	}
	if o.limitBytes > 0 {
		q.Set("limitBytes", strconv.FormatInt(o.limitBytes, 10))
	}
	return podPath(base, "containerLogs", p, container) + "?" + q.Encode()
}

// execURL is the agent's URL of an exec session, with PodExecOptions'
// parameters.
func execURL(base string, p *skiffcorev1.Pod, container string, command []string, stdin, tty bool) string {
	q := url.Values{"command": command, "stdout": {"true"}}
	if stdin {
		q.Set("stdin", "true")
	}
	// A terminal carries stderr in stdout.
	if tty {
		q.Set("tty", "true")
	} else {
		q.Set("stderr", "true")
	}
	return podPath(base, "exec", p, container) + "?" + q.Encode()
}

func podPath(base, endpoint string, p *skiffcorev1.Pod, container string) string {
	return strings.Join([]string{base, endpoint, url.PathEscape(p.Namespace), url.PathEscape(p.Name), url.PathEscape(container)}, "/")
}

// getLog copies a log from the agent to out until it ends (a follow, when
// the container stops or ctx ends).
func getLog(ctx context.Context, hc *http.Client, u string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the node agent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return agentError(resp)
	}
	_, err = io.Copy(out, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// agentError is the agent's refusal, as the text it answered with, and
// what to do for the ones a user can do something about.
func agentError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%s (the node agent knows users by a bearer token or, when run with --client-ca-file, a client certificate of that CA)", msg)
	case http.StatusForbidden:
		return fmt.Errorf("%s (a ClusterRole must grant nodes/log get for logs, nodes/proxy create for exec, nodes/stats get for top, in group %s)", msg, skiffcorev1.GroupVersion.Group)
	}
	return fmt.Errorf("%s", msg)
}
