package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// KeyFileName is the master key file [LoadOrCreateKeyFile] keeps in the data
// directory.
const KeyFileName = "master.key"

// LoadOrCreateKeyFile returns the master key stored in dir/master.key,
// creating the file with a fresh random key on first start; created reports
// which happened, so the caller can tell the operator to back the file up.
//
// The file holds the key in the same standard base64 form as
// ASSISTIV_MASTER_KEY, followed by a newline, with mode 0600. It is written
// to a temporary file, fsynced, and linked into place (so a crash never
// leaves a partial key and two processes starting at once agree on one key),
// then the directory is fsynced. On Unix an existing file readable or
// writable by group or others is refused with [ErrBadKey].
//
// It blocks on file I/O. Concurrent calls on one dir are safe.
func LoadOrCreateKeyFile(dir string) (key []byte, created bool, err error) {
	path := filepath.Join(dir, KeyFileName)
	key, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create key dir: %w", err)
	}
	key = make([]byte, KeySize)
	rand.Read(key) // never fails (crypto/rand, Go ≥ 1.24)
	if err := writeNew(dir, path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			key, err = readKeyFile(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %v, want 0600: %w", path, fi.Mode().Perm(), ErrBadKey)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return key, nil
}

// writeNew atomically creates path with data; it fails with fs.ErrExist if
// path already exists.
func writeNew(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+KeyFileName+".tmp*") // mode 0600
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after Link, this only drops the temp name
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close key file: %w", err)
	}
	// Link, unlike Rename, never replaces an existing key: losing a key
	// already in use would make every sealed value unreadable.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("install key file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync key dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key dir: %w", err)
	}
	return nil
}
