// Package images gets the images a node's pods need into containerd: it
// imports the offline test images that `make images` builds, and pulls
// others as the container's imagePullPolicy says, with the kubelet's errors
// and back-off, so that the runtime can report ErrImagePull,
// ErrImageNeverPull and ImagePullBackOff as upstream does.
//
// Every function works in the containerd namespace that ctx carries
// (namespaces.WithNamespace; skiff's is "skiff") and unpacks for the
// client's default snapshotter (overlayfs), the one the runtime's
// containers are created with.
package images

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd"
)

// Import loads an OCI image-layout tarball, such as those of `make images`,
// into containerd and unpacks every image in it, so that a container can be
// created from it at once. It returns the names the tarball gave the images.
func Import(ctx context.Context, client *containerd.Client, tarball string) ([]string, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, fmt.Errorf("opening image tarball: build it with `make images`: %w", err)
	}
	defer f.Close()
	imgs, err := client.Import(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("importing %s into containerd: %w", tarball, err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("importing %s: it names no image: its index.json needs an io.containerd.image.name annotation", tarball)
	}
	names := make([]string, 0, len(imgs))
	for _, i := range imgs {
		if err := unpack(ctx, containerd.NewImage(client, i)); err != nil {
			return nil, fmt.Errorf("importing %s: %w", tarball, err)
		}
		names = append(names, i.Name)
	}
	return names, nil
}

// unpack makes the image's layers into snapshots unless that is done.
func unpack(ctx context.Context, img containerd.Image) error {
	done, err := img.IsUnpacked(ctx, "")
	if err != nil {
		return fmt.Errorf("image %s: checking its snapshots: %w", img.Name(), err)
	}
	if done {
		return nil
	}
	if err := img.Unpack(ctx, ""); err != nil {
		return fmt.Errorf("unpacking image %s: %w", img.Name(), err)
	}
	return nil
}
