package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the time stamped on every file, layer and config, so that a
// rebuild from the same inputs gives the same digests and containerd does
// not store a copy per build.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one file, directory or symlink of a layer.
type entry struct {
	path string // relative to the root, without a leading slash
	mode int64  // permission bits
	kind byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	link string // a symlink's target
	data []byte // a regular file's content
}

func dir(path string, mode int64) entry { return entry{path: path, mode: mode, kind: tar.TypeDir} }
func file(path string, mode int64, data []byte) entry {
	return entry{path: path, mode: mode, kind: tar.TypeReg, data: data}
}
func symlink(path, target string) entry {
	return entry{path: path, mode: 0o777, kind: tar.TypeSymlink, link: target}
}

// layer is a built layer: its gzip'd blob, as the manifest names it, and the
// digest of its uncompressed tar, which the config's rootfs.diff_ids must
// hold for containerd to unpack it.
type layer struct {
	blob   []byte
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// buildLayer writes entries as a tar sorted by path, with owner root and
// the fixed epoch, and compresses it.
func buildLayer(entries []entry) (layer, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	var raw bytes.Buffer
	if err := writeTar(&raw, entries); err != nil {
		return layer{}, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // no name and no time in the header: deterministic
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return layer{}, err
	}
	if err := zw.Close(); err != nil {
		return layer{}, err
	}
	return layer{
		blob:   gz.Bytes(),
		desc:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())},
		diffID: digest.FromBytes(raw.Bytes()),
	}, nil
}

// writeTar writes entries in the given order, refusing duplicate paths,
// which would make the later silently win.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.path] {
			return fmt.Errorf("layer has %q twice", e.path)
		}
		seen[e.path] = true
		h := &tar.Header{
			Typeflag: e.kind,
			Name:     e.path,
			Linkname: e.link,
			Mode:     e.mode,
			Size:     int64(len(e.data)),
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if e.kind == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
	}
	return tw.Close()
}
