package describe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// view is a read-only apiserver, in memory, that serves upstream objects
// already read from the cluster: skiff's objects converted to their
// upstream twins, and the real Events and Leases. kubectl's describers
// read upstream kinds through a clientset; pointed at a view, they lay out
// skiff's objects exactly as `kubectl describe` lays out upstream's.
//
// It answers GET of one object and LIST with label and field selectors;
// anything else is NotFound, which the describers take as "nothing there".
type view struct {
	// objects are keyed by "group/version/resource".
	objects map[string][]runtime.Object
}

func newView() *view {
	return &view{objects: map[string][]runtime.Object{}}
}

// add stores objects, which must be kinds of client-go's scheme.
func (v *view) add(objs ...runtime.Object) error {
	for _, obj := range objs {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			return err
		}
		obj = obj.DeepCopyObject()
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		key := resourceKey(gvks[0])
		v.objects[key] = append(v.objects[key], obj)
	}
	return nil
}

func resourceKey(gvk schema.GroupVersionKind) string {
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural.Group + "/" + plural.Version + "/" + plural.Resource
}

// config is a rest.Config whose requests the view answers, never reaching
// a network.
func (v *view) config() *rest.Config {
	return &rest.Config{Host: "http://describe.skiff.invalid", Transport: v, QPS: 1000, Burst: 1000}
}

// request is what the view reads from a URL path:
// /api/v1/[namespaces/NS/]RESOURCE[/NAME] or
// /apis/GROUP/VERSION/[namespaces/NS/]RESOURCE[/NAME].
type request struct {
	key, namespace, name string
}

func parsePath(path string) (request, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[1:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, parts = parts[1], parts[2:]
	default:
		return request{}, false
	}
	version, rest := parts[0], parts[1:]
	var r request
	if len(rest) >= 3 && rest[0] == "namespaces" {
		r.namespace, rest = rest[1], rest[2:]
	}
	switch len(rest) {
	case 1:
	case 2:
		r.name = rest[1]
	default:
		return request{}, false
	}
	r.key = group + "/" + version + "/" + rest[0]
	return r, true
}

// RoundTrip answers one request of a clientset.
func (v *view) RoundTrip(req *http.Request) (*http.Response, error) {
	r, ok := parsePath(req.URL.Path)
	if !ok || req.Method != http.MethodGet {
		return respond(req, apierrors.NewNotFound(schema.GroupResource{}, req.URL.Path))
	}
	if r.name != "" {
		for _, obj := range v.objects[r.key] {
			m, _ := meta.Accessor(obj)
			if m.GetNamespace() == r.namespace && m.GetName() == r.name {
				return respond(req, obj)
			}
		}
		return respond(req, apierrors.NewNotFound(schema.ParseGroupResource(r.key), r.name))
	}
	q := req.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return respond(req, apierrors.NewBadRequest(err.Error()))
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return respond(req, apierrors.NewBadRequest(err.Error()))
	}
	items := []runtime.Object{}
	for _, obj := range v.objects[r.key] {
		m, _ := meta.Accessor(obj)
		if r.namespace != "" && m.GetNamespace() != r.namespace {
			continue
		}
		if ls.Matches(labels.Set(m.GetLabels())) && fs.Matches(objectFields(obj)) {
			items = append(items, obj)
		}
	}
	// The list's kind is the describers' to expect; an empty list decodes
	// into whatever list they asked for.
	return respond(req, map[string]any{"metadata": map[string]any{}, "items": items})
}

// objectFields are the fields a describer selects objects by, as the
// apiserver offers them.
func objectFields(obj runtime.Object) fields.Set {
	m, _ := meta.Accessor(obj)
	set := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	switch o := obj.(type) {
	case *corev1.Pod:
		set["spec.nodeName"] = o.Spec.NodeName
		set["status.phase"] = string(o.Status.Phase)
	case *corev1.Event:
		set["involvedObject.kind"] = o.InvolvedObject.Kind
		set["involvedObject.namespace"] = o.InvolvedObject.Namespace
		set["involvedObject.name"] = o.InvolvedObject.Name
		set["involvedObject.uid"] = string(o.InvolvedObject.UID)
		set["involvedObject.apiVersion"] = o.InvolvedObject.APIVersion
		set["reason"] = o.Reason
		set["type"] = o.Type
	}
	return set
}

// respond encodes body (an object, or an error as a Status) as the
// apiserver would, in JSON.
func respond(req *http.Request, body any) (*http.Response, error) {
	code := http.StatusOK
	if err, ok := body.(apierrors.APIStatus); ok {
		status := err.Status()
		status.APIVersion, status.Kind = "v1", "Status"
		body, code = status, int(status.Code)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encoding the describe view's answer to %s: %w", req.URL.Path, err)
	}
	return &http.Response{
		StatusCode: code,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(data)),
		Request:    req,
	}, nil
}
