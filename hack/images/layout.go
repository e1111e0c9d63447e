package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// containerdImageName is the annotation under which containerd's import
// finds an image's full name (images.AnnotationImageName); the OCI
// ref.name annotation holds only the tag, as `ctr export` writes it.
const containerdImageName = "io.containerd.image.name"

// image is one test image: its full name, its layers from the bottom up and
// how it runs.
type image struct {
	name   string
	layers []layer
	config ocispec.ImageConfig
}

// blob is a content-addressed file of the layout.
type blob struct {
	desc ocispec.Descriptor
	data []byte
}

func jsonBlob(mediaType string, v any) (blob, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return blob{}, err
	}
	return blob{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}, nil
}

// hostPlatform is the platform the images run on: this machine's, since
// the binaries in them are built for it.
func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// layoutTar is the image as an OCI image-layout tarball, the format that
// `ctr images import` and containerd's client.Import read: oci-layout,
// index.json naming the image, and blobs/sha256/ holding the manifest, the
// config and the layers.
func layoutTar(img image) ([]byte, error) {
	created := epoch
	cfg := ocispec.Image{
		Created:  &created,
		Platform: hostPlatform(),
		Config:   img.config,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	blobs := []blob{}
	manifest := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range img.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		manifest.Layers = append(manifest.Layers, l.desc)
		blobs = append(blobs, blob{desc: l.desc, data: l.blob})
	}
	cfgBlob, err := jsonBlob(ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return nil, err
	}
	manifest.Config = cfgBlob.desc
	manifestBlob, err := jsonBlob(ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return nil, err
	}
	blobs = append(blobs, cfgBlob, manifestBlob)

	platform := hostPlatform()
	top := manifestBlob.desc
	top.Platform = &platform
	top.Annotations = map[string]string{
		containerdImageName:       img.name,
		ocispec.AnnotationRefName: tag(img.name),
	}
	index, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{top}})
	if err != nil {
		return nil, err
	}
	ociLayout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return nil, err
	}

	entries := []entry{
		file(ocispec.ImageLayoutFile, 0o644, ociLayout),
		file(ocispec.ImageIndexFile, 0o644, index),
		dir("blobs", 0o755),
		dir("blobs/sha256", 0o755),
	}
	for _, b := range blobs {
		path := "blobs/" + b.desc.Digest.Algorithm().String() + "/" + b.desc.Digest.Encoded()
		// Images share layers (busybox is in each): write each blob once.
		if !slices.ContainsFunc(entries, func(e entry) bool { return e.path == path }) {
			entries = append(entries, file(path, 0o644, b.data))
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	var out bytes.Buffer
	if err := writeTar(&out, entries); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.name, err)
	}
	return out.Bytes(), nil
}

// tag is the part of a reference after its last colon, when that colon is
// past the last slash (a registry's port is not a tag).
func tag(ref string) string {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return "latest"
	}
	return ref[i+1:]
}
