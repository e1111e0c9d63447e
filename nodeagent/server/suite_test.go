package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
	"skiff.dev/skiff/internal/testenv"
	"skiff.dev/skiff/nodeagent/containerd"
)

// env is the suite's control plane. Its apiserver, as envtest starts it,
// authorizes with RBAC and signs service account tokens, so TokenReviews
// and SubjectAccessReviews answer as in a real cluster.
var env *testenv.Env

func TestMain(m *testing.M) {
	// The shims run this test binary as the containers' log driver.
	containerd.RunLogDriverIfAsked()
	testenv.RunSuite(m, "nodeagent/server", &env)
}

// The containerd runtime is what the server serves in the agent.
var _ Runtime = &containerd.Runtime{}

// startServer runs a server for node on a free local port until the test
// ends and returns its base URL.
func startServer(t *testing.T, node string, rt Runtime) string {
	t.Helper()
	return startServerWith(t, Config{NodeName: node, Runtime: rt})
}

// startServerWith runs a server of cfg, on a free local port and with the
// suite's client, until the test ends and returns its base URL.
func startServerWith(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Addr, cfg.Client = "127.0.0.1:0", env.Client
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "the server", s.Start)
	return "https://" + s.Addr()
}

// httpsClient trusts the server's self-signed certificate.
var httpsClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

// grant is a ClusterRole's rules on one node subresource in skiff's group.
type grant struct {
	subresource string
	verbs       []string
}

// serviceAccount creates a service account granted rules on nodes and
// returns a token of it from the TokenRequest API; everything is deleted
// when the test ends.
func serviceAccount(t *testing.T, grants ...grant) string {
	t.Helper()
	ctx := context.Background()
	name := "caller-" + rand.String(6)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	create(t, sa)
	if len(grants) > 0 {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for _, g := range grants {
			role.Rules = append(role.Rules, rbacv1.PolicyRule{
				APIGroups: []string{skiffcorev1.GroupVersion.Group},
				Resources: []string{"nodes/" + g.subresource},
				Verbs:     g.verbs,
			})
		}
		create(t, role)
		create(t, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: name}},
		})
		waitForGrant(t, "system:serviceaccount:default:"+name, grants[0])
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s: %v", name, err)
	}
	return tr.Status.Token
}

// waitForGrant waits until the apiserver's RBAC authorizer, which reads
// roles from its informers, knows of a new binding.
func waitForGrant(t *testing.T, user string, g grant) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: skiffcorev1.GroupVersion.Group, Resource: "nodes", Subresource: g.subresource, Verb: g.verbs[0], Name: "any",
			},
		}}
		if err := env.Client.Create(context.Background(), sar); err != nil {
			return err
		}
		if !sar.Status.Allowed {
			return fmt.Errorf("%s may not yet %s nodes/%s", user, g.verbs[0], g.subresource)
		}
		return nil
	})
}

// create creates obj and deletes it when the test ends.
func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() {
		if err := env.Client.Delete(context.Background(), obj); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting %T %s: %v", obj, obj.GetName(), err)
		}
	})
}

// boundPodObject creates a pod bound to node with one container "main" of
// image. The
// object is deleted when the test ends (its finalizers dropped first, as
// no agent runs here to drop them).
func boundPodObject(t *testing.T, node, image string, command ...string) *skiffcorev1.Pod {
	t.Helper()
	pod := &skiffcorev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("pod-%s", rand.String(6))}}
	pod.Spec.NodeName = node
	pod.Spec.Containers = []corev1.Container{{Name: "main", Image: image, Command: command}}
	if err := env.Client.Create(context.Background(), pod); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		p := &skiffcorev1.Pod{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return
		}
		if len(p.Finalizers) > 0 {
			p.Finalizers = nil
			_ = env.Client.Update(ctx, p)
		}
		_ = env.Client.Delete(ctx, p)
	})
	return pod
}

// get sends an authenticated GET and returns the status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpsClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
