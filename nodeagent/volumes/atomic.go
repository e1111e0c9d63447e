package volumes

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// file is one file of a volume's payload.
type file struct {
	data []byte
	mode os.FileMode
}

// payload maps a file's path inside the volume (e.g. "conf/app.yaml") to it.
type payload map[string]file

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic makes dir hold exactly p, the way the kubelet's atomic writer
// does, so that a reader never sees a mix of two versions: the files go into
// a fresh hidden directory "..<timestamp>.<random>", the symlink "..data" is
// switched to it by renaming a new symlink over it (one atomic step), and
// every visible top-level name is a symlink through "..data". Because the
// names never change, a container that bind-mounted dir sees the new content
// at once. It does nothing and returns false when dir already holds p.
func writeAtomic(dir string, p payload) (changed bool, err error) {
	for path := range p {
		if err := validatePayloadPath(path); err != nil {
			return false, err
		}
	}
	oldTS, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	if oldTS != "" {
		same, err := holds(filepath.Join(dir, oldTS), p)
		if err != nil || same {
			return false, err
		}
	}
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	if err := writeFiles(tsDir, p); err != nil {
		os.RemoveAll(tsDir)
		return false, err
	}
	tmpLink := filepath.Join(dir, newDataDirName)
	os.Remove(tmpLink) // left by a crash between symlink and rename
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}
	if err := linkVisibleNames(dir, p); err != nil {
		return true, err
	}
	if oldTS != "" {
		return true, os.RemoveAll(filepath.Join(dir, oldTS))
	}
	return true, nil
}

// validatePayloadPath refuses paths that would leave the volume or clash
// with the writer's own hidden names.
func validatePayloadPath(path string) error {
	switch {
	case path == "":
		return fmt.Errorf("file path must not be empty")
	case filepath.IsAbs(path):
		return fmt.Errorf("file path %q must be relative", path)
	case strings.HasPrefix(path, ".."):
		return fmt.Errorf("file path %q must not start with '..'", path)
	}
	for _, part := range strings.Split(path, "/") {
		if part == ".." {
			return fmt.Errorf("file path %q must not contain '..'", path)
		}
	}
	return nil
}

// holds reports whether tsDir holds exactly the files of p, with their
// content and mode.
func holds(tsDir string, p payload) (bool, error) {
	seen := 0
	err := filepath.WalkDir(tsDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tsDir, path)
		want, ok := p[rel]
		if !ok {
			return errDiffers
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if info.Mode().Perm() != want.mode.Perm() || !bytes.Equal(got, want.data) {
			return errDiffers
		}
		seen++
		return nil
	})
	if err == errDiffers || os.IsNotExist(err) {
		return false, nil
	}
	return err == nil && seen == len(p), err
}

var errDiffers = errors.New("payload differs")

// writeFiles writes p under dir, creating subdirectories.
func writeFiles(dir string, p payload) error {
	for path, f := range p {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		// WriteFile's mode is cut by the umask; the pod asked for this one.
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// linkVisibleNames makes each top-level name of p a symlink into "..data"
// and removes the links of names p no longer has.
func linkVisibleNames(dir string, p payload) error {
	want := map[string]bool{}
	for path := range p {
		top, _, _ := strings.Cut(path, "/")
		want[top] = true
	}
	for name := range want {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, name), link); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || want[e.Name()] || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
