package deployment

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	skiffappsv1 "skiff.dev/skiff/api/apps/v1"
)

func revRS(rev int64, replicas, pods int32) *skiffappsv1.ReplicaSet {
	rs := &skiffappsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
		Name:        fmt.Sprintf("rev%d", rev),
		Annotations: map[string]string{RevisionAnnotation: strconv.FormatInt(rev, 10)},
	}}
	rs.Spec.Replicas = ptr.To(replicas)
	rs.Status.Replicas = pods
	rs.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", PodTemplateHashLabel: "h"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: fmt.Sprintf("img:%d", rev)}}},
	}
	return rs
}

func TestHistoryToDelete(t *testing.T) {
	cases := []struct {
		name  string
		old   []*skiffappsv1.ReplicaSet
		limit *int32
		want  string
	}{
		{"within the default limit", []*skiffappsv1.ReplicaSet{revRS(1, 0, 0), revRS(2, 0, 0)}, nil, "[]"},
		{"limit 1 keeps the newest empty one", []*skiffappsv1.ReplicaSet{revRS(3, 0, 0), revRS(1, 0, 0), revRS(2, 0, 0)}, ptr.To[int32](1), "[rev1 rev2]"},
		{"limit 0 deletes every empty one", []*skiffappsv1.ReplicaSet{revRS(1, 0, 0), revRS(2, 0, 0)}, ptr.To[int32](0), "[rev1 rev2]"},
		{"ones with replicas or pods stay", []*skiffappsv1.ReplicaSet{revRS(1, 2, 2), revRS(2, 0, 1), revRS(3, 0, 0)}, ptr.To[int32](0), "[rev3]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var names []string
			for _, rs := range historyToDelete(c.old, c.limit) {
				names = append(names, rs.Name)
			}
			if got := fmt.Sprint(names); got != c.want && !(c.want == "[]" && len(names) == 0) {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestRollbackTemplate(t *testing.T) {
	rss := []*skiffappsv1.ReplicaSet{revRS(1, 0, 0), revRS(2, 0, 0), revRS(4, 3, 3)}
	cases := []struct {
		name      string
		want      int64
		wantRev   int64
		wantImage string
		wantErr   bool
	}{
		{"0 is the previous revision", 0, 2, "img:2", false},
		{"a chosen revision", 1, 1, "img:1", false},
		{"a cleaned-up revision is an error", 3, 0, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, rev, err := rollbackTemplate(rss, 4, c.want)
			if (err != nil) != c.wantErr {
				t.Fatalf("err %v, wantErr %v", err, c.wantErr)
			}
			if c.wantErr {
				return
			}
			if rev != c.wantRev || tmpl.Spec.Containers[0].Image != c.wantImage {
				t.Errorf("got revision %d image %s, want %d %s", rev, tmpl.Spec.Containers[0].Image, c.wantRev, c.wantImage)
			}
			if _, ok := tmpl.Labels[PodTemplateHashLabel]; ok {
				t.Error("the rollback template kept the hash label")
			}
		})
	}
	if _, _, err := rollbackTemplate(rss[:1], 1, 0); err == nil {
		t.Error("rolling back from the first revision gave no error")
	}
}

func TestAppendRevisionHistory(t *testing.T) {
	long := strings.Repeat("1234,", 399) + "1234" // 1,999 characters
	cases := []struct {
		name, history, rev, want string
	}{
		{"first reuse", "", "1", "1"},
		{"later reuses append", "1,3", "5", "1,3,5"},
		{"over the limit, the oldest go", long, "99", strings.Repeat("1234,", 399) + "99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := appendRevisionHistory(c.history, c.rev)
			if got != c.want || len(got) > maxRevisionHistoryChars {
				t.Errorf("got %d characters ending %q, want %d ending %q", len(got), got[max(len(got)-12, 0):], len(c.want), c.want[max(len(c.want)-12, 0):])
			}
		})
	}
}
