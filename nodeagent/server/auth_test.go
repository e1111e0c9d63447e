package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"net/http/httptest"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/nodeagent/images"
)

// logFileRuntime serves every container's log from one CRI log file and
// runs nothing: the authentication and authorization tests need a log to
// read, not containers (the exec tests run real ones).
type logFileRuntime struct{ path string }

func (l logFileRuntime) ContainerLogs(_ context.Context, pod *skiffcorev1.Pod, container string, _ bool) (string, bool, error) {
	if container != "main" {
		return "", false, errors.New(`container "` + container + `" is not valid for pod "` + pod.Name + `"`)
	}
	return l.path, false, nil
}

func (logFileRuntime) Exec(context.Context, *skiffcorev1.Pod, string, []string, bool, io.Reader, io.WriteCloser, io.WriteCloser, <-chan remotecommand.TerminalSize) error {
	return errors.New("this test runtime runs no containers")
}

// TestAuth checks that callers are authenticated by TokenReview (401
// without a valid token), authorized by SubjectAccessReview on
// nodes/log and nodes/proxy in core.skiff.dev (403 without a grant), and
// served only the pods of this node (404).
func TestAuth(t *testing.T) {
	log := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(log, []byte("2026-11-25T10:00:00Z stdout F hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := startServer(t, "node-auth", logFileRuntime{path: log})
	here := boundPodObject(t, "node-auth", images.Busybox)
	elsewhere := boundPodObject(t, "node-other", images.Busybox)

	reader := serviceAccount(t, grant{"log", []string{"get"}})
	proxyOnly := serviceAccount(t, grant{"proxy", []string{"create"}})
	nobody := serviceAccount(t)
	logsOf := func(p *skiffcorev1.Pod) string {
		return base + "/containerLogs/" + p.Namespace + "/" + p.Name + "/main"
	}

	for _, tc := range []struct {
		name     string
		url      string
		token    string
		wantCode int
		wantBody string
	}{
		{"granted nodes/log", logsOf(here), reader, http.StatusOK, "hello\n"},
		{"granted nodes/log again, from the cache", logsOf(here) + "?timestamps=true", reader, http.StatusOK, "2026-11-25T10:00:00Z hello\n"},
		{"no token", logsOf(here), "", http.StatusUnauthorized, "send a bearer token"},
		{"a token the apiserver did not issue", logsOf(here), "not-a-token", http.StatusUnauthorized, "Unauthorized"},
		{"no grant", logsOf(here), nobody, http.StatusForbidden, "Forbidden (user=system:serviceaccount:default:"},
		{"nodes/proxy is not nodes/log", logsOf(here), proxyOnly, http.StatusForbidden, "subresource=log"},
		{"exec needs nodes/proxy", base + "/exec/default/" + here.Name + "/main?command=true&output=1", reader, http.StatusForbidden, "verb=create"},
		{"a pod of another node", logsOf(elsewhere), reader, http.StatusNotFound, "is not on node node-auth"},
		{"a pod that does not exist", base + "/containerLogs/default/nope/main", reader, http.StatusNotFound, "pod default/nope not found"},
		{"a container the pod lacks", base + "/containerLogs/default/" + here.Name + "/other", reader, http.StatusBadRequest, `container "other" is not valid`},
		{"bad options", logsOf(here) + "?tailLines=-3", reader, http.StatusBadRequest, "tailLines: must be an integer >= 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, tc.url, tc.token)
			if code != tc.wantCode || !strings.Contains(body, tc.wantBody) {
				t.Errorf("got %d %q, want %d with %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// TestTokenVerdictsAreCached checks that a token costs one TokenReview a
// minute when valid and one per 10 s when not, as the kubelet's webhook
// authenticator caches them.
func TestTokenVerdictsAreCached(t *testing.T) {
	var reviews int
	watching, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	counting := interceptor.NewClient(watching, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*authenticationv1.TokenReview); ok {
				reviews++
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	now := time.Now()
	a := newAuthenticator(counting)
	a.now = func() time.Time { return now }
	valid := serviceAccount(t)
	request := func(token string) error {
		r := httptest.NewRequest(http.MethodGet, "/containerLogs/default/p/c", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		_, err := a.authenticate(context.Background(), r)
		return err
	}
	for _, step := range []struct {
		name        string
		token       string
		after       time.Duration
		wantErr     bool
		wantReviews int
	}{
		{"a valid token is reviewed", valid, 0, false, 1},
		{"and trusted for a minute", valid, 59 * time.Second, false, 1},
		{"then reviewed again", valid, 2 * time.Second, false, 2},
		{"an invalid token is reviewed", "bogus", 0, true, 3},
		{"and refused for 10 s", "bogus", 9 * time.Second, true, 3},
		{"then reviewed again", "bogus", 2 * time.Second, true, 4},
	} {
		now = now.Add(step.after)
		err := request(step.token)
		if (err != nil) != step.wantErr || reviews != step.wantReviews {
			t.Errorf("%s: error %v, %d reviews; want error %v, %d reviews", step.name, err, reviews, step.wantErr, step.wantReviews)
		}
	}
}
