package rollout

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	cases := []struct {
		args []string
		want []Target
		err  string
	}{
		{[]string{"deployment/web"}, []Target{{Deployment, "web"}}, ""},
		{[]string{"deploy", "web"}, []Target{{Deployment, "web"}}, ""},
		{[]string{"deploy", "web", "api"}, []Target{{Deployment, "web"}, {Deployment, "api"}}, ""},
		{[]string{"sts/db", "ds/agent"}, []Target{{StatefulSet, "db"}, {DaemonSet, "agent"}}, ""},
		{[]string{"deployments.apps/web"}, []Target{{Deployment, "web"}}, ""},
		{[]string{"Deployment.apps.skiff.dev/web"}, []Target{{Deployment, "web"}}, ""},
		{[]string{"sdeploy", "web"}, []Target{{Deployment, "web"}}, ""},
		{[]string{"daemonsets", "agent"}, []Target{{DaemonSet, "agent"}}, ""},
		{nil, nil, "required resource not specified"},
		{[]string{"deploy"}, nil, `a name is required after "deploy"`},
		{[]string{"deploy", "deploy/web"}, nil, "no need to specify a resource type"},
		{[]string{"rs/web"}, nil, `no rollout for resource type "rs"`},
		{[]string{"pod", "web"}, nil, `no rollout for resource type "pod"`},
		{[]string{"deployment/"}, nil, "must have a single resource and name"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			got, err := ParseTargets(c.args)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
