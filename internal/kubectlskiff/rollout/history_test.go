package rollout

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHistoryTable(t *testing.T) {
	cases := []struct {
		name string
		revs []revision
		want string
	}{
		{"no revisions", nil, "REVISION  CHANGE-CAUSE\n"},
		{"causes and none", []revision{{Number: 1}, {Number: 2, ChangeCause: "kubectl set image deployment/web app=echo:v2"}, {Number: 10, ChangeCause: "undo"}},
			"REVISION  CHANGE-CAUSE\n" +
				"1         <none>\n" +
				"2         kubectl set image deployment/web app=echo:v2\n" +
				"10        undo\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := historyTable(c.revs); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestTemplateView(t *testing.T) {
	r := revision{Number: 2, ChangeCause: "new image", Template: &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "echo:v2",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}},
	}}
	want := `Pod Template:
  Labels:       app=web
  Annotations:  kubernetes.io/change-cause: new image
  Containers:
   app:
    Image:         echo:v2
    Port:          8080/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
`
	if got := templateView(r); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if r.Template.Annotations != nil {
		t.Error("templateView changed the revision's template")
	}
}

func TestFindRevision(t *testing.T) {
	revs := []revision{{Number: 1}, {Number: 3}, {Number: 4}}
	cases := []struct {
		name string
		revs []revision
		want int64
		got  int64
		err  string
	}{
		{"previous", revs, 0, 3, ""},
		{"named", revs, 1, 1, ""},
		{"missing", revs, 2, 0, "unable to find specified revision 2 in history"},
		{"no previous", revs[:1], 0, 0, "no rollout history found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := findRevision(c.revs, c.want)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || r.Number != c.got {
				t.Errorf("got revision %d, %v; want %d", r.Number, err, c.got)
			}
		})
	}
}

func TestUndoAnnotations(t *testing.T) {
	deployment := map[string]string{
		"deployment.kubernetes.io/revision":                "4",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
		"kubernetes.io/change-cause":                       "current",
		"team":                                             "web",
	}
	replicaSet := map[string]string{
		"deployment.kubernetes.io/revision":         "2",
		"deployment.kubernetes.io/desired-replicas": "3",
		"deployment.kubernetes.io/max-replicas":     "4",
		"kubernetes.io/change-cause":                "old",
		"team":                                      "web-old",
	}
	want := map[string]string{
		"deployment.kubernetes.io/revision":                "4",
		"kubectl.kubernetes.io/last-applied-configuration": "{}",
		"kubernetes.io/change-cause":                       "old",
		"team":                                             "web-old",
	}
	if got := undoAnnotations(deployment, replicaSet); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
