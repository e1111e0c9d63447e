package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxRedirects is how many redirects to the same host an HTTP probe follows.
const maxRedirects = 10

// probeTransport carries every HTTP probe. No keep-alive and no proxy: each
// probe is a new connection straight to the pod, as the kubelet's, so that a
// probe tests that the container accepts connections. Certificates are not
// checked: pods serve HTTPS with certificates for their own names, not for
// their IPs. The probe's timeout bounds the dial through the request.
var probeTransport = &http.Transport{
	DialContext:       probeDialer(0).DialContext,
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet: probes do not verify the pod's certificate
	DisableKeepAlives: true,
}

// probeHTTP GETs the probe's URL: 200-399 is success, any other status a
// failure. Redirects are followed only to the same host, as the kubelet
// does, so that a probe cannot be sent off the node by what the container
// answers; a redirect elsewhere is a success with a warning.
func probeHTTP(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string, timeout time.Duration) (Result, string) {
	req, err := httpProbeRequest(ctx, g, c, podIP)
	if err != nil {
		return Unknown, "httpGet probe: " + err.Error()
	}
	client := &http.Client{Timeout: timeout, Transport: probeTransport, CheckRedirect: sameHostRedirects}
	resp, err := client.Do(req)
	if err != nil {
		return Failure, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	if err != nil {
		return Failure, fmt.Sprintf("HTTP probe failed reading the response body: %v", err)
	}
	return httpResult(resp.StatusCode, string(body))
}

// httpResult judges a response's status, as the kubelet does.
func httpResult(status int, body string) (Result, string) {
	switch {
	case status >= http.StatusOK && status < http.StatusMultipleChoices:
		return Success, body
	case status >= http.StatusMultipleChoices && status < http.StatusBadRequest:
		return Warning, "Probe terminated redirects, Response body: " + body
	}
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", status)
}

// httpProbeRequest builds the probe's GET: the scheme (http unless told),
// the host (the pod's IP unless named), the port (by number or by the
// container's port name), the path, the probe's headers, and the kubelet's
// default User-Agent and Accept where the probe sets none.
func httpProbeRequest(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) (*http.Request, error) {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return nil, err
	}
	host, err := probeHost(g.Host, podIP)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		u = &url.URL{Path: g.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for _, h := range g.HTTPHeaders {
		req.Header.Add(h.Name, h.Value)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", UserAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	return req, nil
}

// sameHostRedirects follows a redirect only to the host the probe started
// at; to any other, it stops and the redirect itself is the answer.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}
