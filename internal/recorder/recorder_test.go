package recorder

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// counting is an EventRecorder that counts what reaches it per object.
type counting map[types.UID]int

func (c counting) Eventf(regarding, _ runtime.Object, _, _, _, _ string, _ ...interface{}) {
	c[regarding.(*corev1.ConfigMap).UID]++
}

func TestFilterAllowsABurstPerObject(t *testing.T) {
	cases := []struct {
		name       string
		objects    int
		eventsEach int
		wantEach   int
	}{
		{"a few events pass", 1, 3, 3},
		{"a burst is cut at 25", 1, 1000, burstPerObject},
		{"each object has its own share", 40, 30, burstPerObject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := counting{}
			r := Filter(sink)
			for i := range tc.objects {
				obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{UID: types.UID(fmt.Sprint(i))}}
				for range tc.eventsEach {
					r.Eventf(obj, nil, corev1.EventTypeNormal, "Test", "Test", "event")
				}
			}
			if len(sink) != tc.objects {
				t.Fatalf("%d objects got Events, want %d", len(sink), tc.objects)
			}
			for uid, n := range sink {
				if n != tc.wantEach {
					t.Errorf("object %s got %d Events, want %d", uid, n, tc.wantEach)
				}
			}
		})
	}
}
