// Package clitest runs `kubectl skiff` in process for tests, against a test
// cluster, capturing what it writes.
package clitest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"skiff.dev/skiff/internal/kubectlskiff"
	"skiff.dev/skiff/internal/testenv"
)

// Plugin is `kubectl skiff` pointed at one test cluster and namespace.
type Plugin struct {
	Kubeconfig string
	Namespace  string
}

// New writes an admin kubeconfig for env's cluster and returns the plugin
// aimed at it, in namespace ns.
func New(t testing.TB, env *testenv.Env, ns string) Plugin {
	t.Helper()
	kubeconfig, err := env.WriteAdminKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return Plugin{Kubeconfig: kubeconfig, Namespace: ns}
}

// Run runs `kubectl skiff ARGS` and returns what it wrote to stdout and
// stderr, and its error (which main prints as "error: ..." with exit
// code 1).
func (p Plugin) Run(args ...string) (stdout, stderr string, err error) {
	return p.RunWithInput("", args...)
}

// RunWithInput is Run with input as the plugin's standard input.
func (p Plugin) RunWithInput(input string, args ...string) (stdout, stderr string, err error) {
	streams, in, out, errOut := genericiooptions.NewTestIOStreams()
	in.WriteString(input)
	cmd := kubectlskiff.NewRootCommand(streams)
	cmd.SetArgs(append([]string{"--kubeconfig", p.Kubeconfig, "-n", p.Namespace}, args...))
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// MustRun is Run for a command that must succeed; it returns stdout.
func (p Plugin) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := p.Run(args...)
	if err != nil {
		t.Fatalf("kubectl skiff %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// AsServiceAccount rewrites p's kubeconfig to authenticate as a new service
// account name of p's namespace, with a bearer token instead of the admin's
// client certificate, bound to a ClusterRole of rules; it returns once the
// apiserver's RBAC authorizer, which learns of bindings from a watch,
// grants the first rule. Everything it creates is deleted when the test
// ends.
func (p Plugin) AsServiceAccount(t testing.TB, env *testenv.Env, name string, rules ...rbacv1.PolicyRule) Plugin {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: name}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + p.Namespace}, Rules: rules}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: p.Namespace, Name: name}},
	}
	for _, obj := range []client.Object{sa, role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
	}
	tr := &authenticationv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.LoadFromFile(p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range cfg.AuthInfos {
		*user = clientcmdapi.AuthInfo{Token: tr.Status.Token}
	}
	if err := clientcmd.WriteToFile(*cfg, p.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	first := rules[0]
	testenv.Eventually(t, 30*time.Second, func() error {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + p.Namespace + ":" + name,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + p.Namespace},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: first.APIGroups[0], Resource: first.Resources[0], Verb: first.Verbs[0], Namespace: p.Namespace,
			},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			return err
		}
		if !sar.Status.Allowed {
			return fmt.Errorf("service account %s/%s may not yet %s %s", p.Namespace, name, first.Verbs[0], first.Resources[0])
		}
		return nil
	})
	return p
}
