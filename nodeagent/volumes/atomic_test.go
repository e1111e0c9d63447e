package volumes

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readVisible reads a volume as a container sees it: every visible name,
// through its symlinks.
func readVisible(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(rel, "..") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&os.ModeSymlink != 0 {
			return readThrough(t, path, rel, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// readThrough reads a visible symlink (a file, or a directory of files).
func readThrough(t *testing.T, path, rel string, got map[string]string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		data, err := os.ReadFile(path)
		got[rel] = string(data)
		return err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := readThrough(t, filepath.Join(path, e.Name()), rel+"/"+e.Name(), got); err != nil {
			return err
		}
	}
	return nil
}

func dataTarget(t *testing.T, dir string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	first := payload{"a": {data: []byte("1"), mode: 0o644}, "conf/b.yaml": {data: []byte("b: 1"), mode: 0o600}}

	changed, err := writeAtomic(dir, first)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	ts1 := dataTarget(t, dir)
	if !strings.HasPrefix(ts1, "..") || strings.Contains(ts1, "/") {
		t.Fatalf("..data points to %q, want a hidden sibling directory", ts1)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "a")); link != "..data/a" {
		t.Fatalf("a -> %q, want ..data/a", link)
	}
	if link, _ := os.Readlink(filepath.Join(dir, "conf")); link != "..data/conf" {
		t.Fatalf("conf -> %q, want ..data/conf", link)
	}
	if info, err := os.Stat(filepath.Join(dir, "conf/b.yaml")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("conf/b.yaml: %v, mode %v; want 0600", err, info.Mode())
	}

	// The same payload again is no write at all.
	changed, err = writeAtomic(dir, first)
	if err != nil || changed || dataTarget(t, dir) != ts1 {
		t.Fatalf("rewrite of the same payload: changed=%v err=%v target %s (was %s)", changed, err, dataTarget(t, dir), ts1)
	}

	// A mode change alone is a change.
	modeOnly := payload{"a": {data: []byte("1"), mode: 0o400}, "conf/b.yaml": first["conf/b.yaml"]}
	if changed, err = writeAtomic(dir, modeOnly); err != nil || !changed {
		t.Fatalf("mode change: changed=%v err=%v", changed, err)
	}

	// New content, a removed name and a new name: one switch.
	second := payload{"a": {data: []byte("2"), mode: 0o644}, "c": {data: []byte("3"), mode: 0o644}}
	if changed, err = writeAtomic(dir, second); err != nil || !changed {
		t.Fatalf("second write: changed=%v err=%v", changed, err)
	}
	want := map[string]string{"a": "2", "c": "3"}
	if got := readVisible(t, dir); !maps.Equal(got, want) {
		t.Fatalf("visible files %v, want %v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	var hidden []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			hidden = append(hidden, e.Name())
		}
	}
	if len(hidden) != 2 { // ..data and one timestamped directory
		t.Fatalf("hidden entries %v: old versions were not removed", hidden)
	}
}

func TestWriteAtomicRefusesEscapingPaths(t *testing.T) {
	for _, path := range []string{"", "/etc/passwd", "../x", "a/../../x", "..data", "..2026"} {
		dir := t.TempDir()
		if _, err := writeAtomic(dir, payload{path: {data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("path %q: want an error", path)
		}
	}
}
