package containerd

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/containerd"

	"skiff.dev/skiff/internal/hosttest"
)

// TestClientSpeaksToTheDaemon checks that the Go client skiff is built with
// works with the installed containerd (Debian's 1.6): the versions differ,
// and the API calls the runtime makes must be served.
func TestClientSpeaksToTheDaemon(t *testing.T) {
	hosttest.RequireRoot(t)
	hosttest.RequireCommand(t, "containerd")
	ctx := context.Background()
	d, err := StartDaemon(ctx, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	c, err := containerd.New(d.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Version, "1.6") && !strings.HasPrefix(v.Version, "1.7") && !strings.HasPrefix(v.Version, "2.") {
		t.Errorf("containerd %s: skiff is tested with 1.6 and later", v.Version)
	}
	t.Logf("containerd %s", v.Version)
}
