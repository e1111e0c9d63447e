package config_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestDeployManifestsApply does what `make deploy` does, against a real
// apiserver: kustomize builds config/default and kubectl applies it server-side.
// Then it asks to remove it all, as `make undeploy` does.
func TestDeployManifestsApply(t *testing.T) {
	kustomize := filepath.Join(env.Root, "bin", "kustomize")
	if _, err := os.Stat(kustomize); err != nil {
		t.Fatalf("kustomize is missing from bin/: run `make test`, which builds it (%v)", err)
	}
	out, err := exec.Command(kustomize, "build", filepath.Join(env.Root, "config", "default")).Output()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	manifests := filepath.Join(t.TempDir(), "deploy.yaml")
	if err := os.WriteFile(manifests, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl("apply", "--server-side", "--force-conflicts", "-f", manifests); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	ctx := context.Background()
	var deploy appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "skiff-system", Name: "skiff-manager"}, &deploy); err != nil {
		t.Fatalf("the manager Deployment was not created: %v", err)
	}
	if got := deploy.Spec.Template.Spec.ServiceAccountName; got != "skiff-manager" {
		t.Errorf("the manager runs as service account %q, want skiff-manager", got)
	}
	var binding rbacv1.ClusterRoleBinding
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "skiff-manager-rolebinding"}, &binding); err != nil {
		t.Fatalf("the manager's ClusterRoleBinding was not created: %v", err)
	}
	if binding.RoleRef.Name != "skiff-manager-role" || binding.Subjects[0].Name != "skiff-manager" {
		t.Errorf("the binding does not tie skiff-manager-role to skiff-manager: %+v", binding)
	}

	// Undeploy for real would take the CRDs away from the rest of the suite;
	// a server-side dry run checks the same request.
	if out, err := env.Kubectl("delete", "--dry-run=server", "-f", manifests); err != nil {
		t.Fatalf("undeploy: %v\n%s", err, out)
	}
}
