package testenv

import (
	"context"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
)

// EventsAbout lists the Events, in every namespace, regarding the object
// with uid: by UID, because a Node's Events live in the default namespace
// and a re-created object keeps its name.
func (e *Env) EventsAbout(t testing.TB, uid types.UID) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := e.Client.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.UID == uid {
			out = append(out, ev)
		}
	}
	return out
}
