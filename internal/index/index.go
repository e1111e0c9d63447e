// Package index registers the cache field indexes that several controllers
// share. The cache refuses a second registration of one index name, and
// every controller must still be able to set itself up alone (in its own
// suite), so registration here is idempotent per cache, kind and field.
package index

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	skiffcorev1 "skiff.dev/skiff/api/core/v1"
)

// PodNodeName indexes skiff Pods by spec.nodeName.
const PodNodeName = "spec.nodeName"

type key struct {
	indexer client.FieldIndexer
	kind    reflect.Type
	field   string
}

var registered struct {
	sync.Mutex
	done map[key]bool
}

// Register adds the index field of obj's kind to the cache behind indexer,
// unless a controller already did.
func Register(ctx context.Context, indexer client.FieldIndexer, obj client.Object, field string, extract client.IndexerFunc) error {
	k := key{indexer: indexer, kind: reflect.TypeOf(obj), field: field}
	registered.Lock()
	defer registered.Unlock()
	if registered.done[k] {
		return nil
	}
	if err := indexer.IndexField(ctx, obj, field, extract); err != nil {
		return fmt.Errorf("indexing %T by %s: %w", obj, field, err)
	}
	if registered.done == nil {
		registered.done = map[key]bool{}
	}
	registered.done[k] = true
	return nil
}

// PodsByNodeName registers the PodNodeName index.
func PodsByNodeName(ctx context.Context, indexer client.FieldIndexer) error {
	return Register(ctx, indexer, &skiffcorev1.Pod{}, PodNodeName, func(o client.Object) []string {
		if n := o.(*skiffcorev1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	})
}

// OnNode selects, in a List from a cache with the PodNodeName index, the
// pods bound to node.
func OnNode(node string) client.MatchingFields {
	return client.MatchingFields{PodNodeName: node}
}
