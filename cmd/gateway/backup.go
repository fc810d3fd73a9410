package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/assistiv/gateway/persistence"
)

// Online backup: a running node listens on a unix socket in its data dir
// (ASSISTIV_OPERATOR_SOCKET; mode 0600, so only the node's own user, or
// root, can use it). `gateway backup --to DIR` asks it over that socket to
// write DIR: a Pebble checkpoint of the money store (pebble/) and of the
// call logs (logs/), taken while traffic goes on, and a copy of every
// other file of the data dir (the master key file, legacy skill blobs).
// BACKUP.json, written and synced last, marks the backup complete; restore
// refuses a directory without it.
//
//	DIR/pebble/        checkpoint: every write acknowledged before the request
//	DIR/logs/          checkpoint of the per-call logs
//	DIR/master.key     when the node keeps its master key in the data dir
//	DIR/...            any other file of the data dir
//	DIR/BACKUP.json    manifest (format, version, time, parts)

// backupManifest is BACKUP.json.
type backupManifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"gateway_version"`
	Node      string    `json:"node"`
	CreatedAt time.Time `json:"created_at"`
	TookMs    int64     `json:"took_ms"`
	Parts     []string  `json:"parts"`
}

const (
	backupFormat   = 1
	manifestName   = "BACKUP.json"
	socketName     = "gateway.sock"
	maxSocketPath  = 100 // sun_path is 108 bytes on Linux, 104 on BSDs
	backupEndpoint = "/v1/backup"
	logsSubdir     = "logs" // logs.OpenDB's store
)

// operatorSocket is the socket's path for a data dir ("" when off).
func operatorSocket(dataDir string) string {
	v := env("ASSISTIV_OPERATOR_SOCKET", "")
	switch v {
	case "off":
		return ""
	case "":
		abs, err := filepath.Abs(filepath.Join(dataDir, socketName))
		if err != nil {
			return ""
		}
		return abs
	}
	return v
}

// operator is the node's side of the socket.
type operator struct {
	path    string
	dataDir string
	store   *persistence.Store
	logDB   *persistence.Store
	log     *slog.Logger
	srv     *http.Server
	mu      sync.Mutex // one backup at a time
}

// startOperator listens on the operator socket. It returns nil (and logs
// why) when the socket is off or its path is too long for a unix socket.
func startOperator(dataDir string, store, logDB *persistence.Store, log *slog.Logger) (*operator, error) {
	path := operatorSocket(dataDir)
	if path == "" {
		return nil, nil
	}
	if len(path) > maxSocketPath {
		log.Warn("operator socket off: its path is too long for a unix socket; set ASSISTIV_OPERATOR_SOCKET", "path", path)
		return nil, nil
	}
	// The data dir is locked by this process (Pebble's LOCK): a socket file
	// there is a leftover of a killed node.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("operator socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("operator socket: %w", err)
	}
	op := &operator{path: path, dataDir: dataDir, store: store, logDB: logDB, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+backupEndpoint, op.handleBackup)
	op.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = op.srv.Serve(ln) }()
	log.Info("operator socket listening", "path", path)
	return op, nil
}

// Close stops the socket, waiting up to 30 s for a running backup.
func (op *operator) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = op.srv.Shutdown(ctx)
	_ = os.Remove(op.path)
}

type backupRequest struct {
	To string `json:"to"`
}

type operatorError struct {
	Error string `json:"error"`
}

func (op *operator) handleBackup(w http.ResponseWriter, r *http.Request) {
	var req backupRequest
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || !filepath.IsAbs(req.To) {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(operatorError{"the body must be {\"to\": \"/absolute/dir\"}"})
		return
	}
	if !op.mu.TryLock() {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(operatorError{"a backup is already running"})
		return
	}
	defer op.mu.Unlock()
	m, err := writeBackup(req.To, op.dataDir, op.store, op.logDB)
	if err != nil {
		op.log.Error("backup failed", "to", req.To, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(operatorError{err.Error()})
		return
	}
	op.log.Info("backup written", "to", req.To, "took_ms", m.TookMs, "parts", len(m.Parts))
	_ = json.NewEncoder(w).Encode(m)
}

// writeBackup writes a complete backup of a running node to dst, which
// must not exist or be empty. On failure it removes what it wrote.
func writeBackup(dst, dataDir string, store, logDB *persistence.Store) (m *backupManifest, err error) {
	start := time.Now()
	if err := ensureEmptyDir(dst); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cleanDir(dst)
		}
	}()
	m = &backupManifest{Format: backupFormat, Version: version, CreatedAt: start.UTC()}
	m.Node, _ = os.Hostname()
	if err := store.Checkpoint(filepath.Join(dst, "pebble")); err != nil {
		return nil, err
	}
	m.Parts = append(m.Parts, "pebble/")
	if err := logDB.Checkpoint(filepath.Join(dst, logsSubdir)); err != nil {
		return nil, err
	}
	m.Parts = append(m.Parts, logsSubdir+"/")
	// Everything else in the data dir, as files.
	absDst, _ := filepath.Abs(dst)
	err = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, path)
		if rel == "." {
			return nil
		}
		top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
		if abs, _ := filepath.Abs(path); abs == absDst || top == "pebble" || top == logsSubdir {
			return skipEntry(d)
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(path, manifestName)); err == nil {
				return fs.SkipDir // an earlier backup kept in the data dir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil // the socket, links
		}
		if err := copyFile(path, filepath.Join(dst, rel)); err != nil {
			return err
		}
		m.Parts = appendTop(m.Parts, top, top != rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy data dir files: %w", err)
	}
	m.TookMs = time.Since(start).Milliseconds()
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := writeFileSync(filepath.Join(dst, manifestName), append(raw, '\n')); err != nil {
		return nil, err
	}
	return m, syncDir(dst)
}

func appendTop(parts []string, top string, dir bool) []string {
	if dir {
		top += "/"
	}
	for _, p := range parts {
		if p == top {
			return parts
		}
	}
	return append(parts, top)
}

func skipEntry(d fs.DirEntry) error {
	if d.IsDir() {
		return fs.SkipDir
	}
	return nil
}

// ensureEmptyDir creates dir (and its parents) or accepts it empty.
func ensureEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty: give a new or empty directory", dir)
	}
	return nil
}

// cleanDir empties dir after a failed backup or restore (dir itself stays:
// it may be a mount point).
func cleanDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// backupCmd is `gateway backup --to DIR`: it asks the node running on the
// data dir (through its operator socket) to write a backup to DIR.
func backupCmd(args []string) error {
	fl := flag.NewFlagSet("backup", flag.ContinueOnError)
	to := fl.String("to", "", "directory to write the backup to; new or empty (required)")
	dataDir := fl.String("data-dir", env("ASSISTIV_DATA_DIR", "./data"), "data dir of the running node, to find its socket (ASSISTIV_DATA_DIR)")
	sock := fl.String("socket", "", "the node's operator socket (default: ASSISTIV_OPERATOR_SOCKET or DATA_DIR/gateway.sock)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("backup needs --to DIR")
	}
	dst, err := filepath.Abs(*to)
	if err != nil {
		return err
	}
	path := *sock
	if path == "" {
		path = operatorSocket(*dataDir)
	}
	if path == "" {
		return errors.New("the operator socket is off (ASSISTIV_OPERATOR_SOCKET=off); give --socket")
	}
	m, err := requestBackup(path, dst)
	if err != nil {
		return err
	}
	fmt.Printf("backup written to %s in %d ms: %s\n", dst, m.TookMs, strings.Join(m.Parts, " "))
	return nil
}

// requestBackup asks the node on socket path for a backup to dst.
func requestBackup(path, dst string) (*backupManifest, error) {
	hc := &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	defer hc.CloseIdleConnections()
	body, _ := json.Marshal(backupRequest{To: dst})
	resp, err := hc.Post("http://gateway"+backupEndpoint, "application/json", strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("no running gateway answers on %s (start the node, or give --data-dir/--socket): %w", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e operatorError
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("backup refused: %s", e.Error)
		}
		return nil, fmt.Errorf("backup refused: HTTP %d", resp.StatusCode)
	}
	var m backupManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("backup answer: %w", err)
	}
	return &m, nil
}

// restoreFromBackup rebuilds dataDir (new or empty) from the backup in
// src, then opens both stores once to prove the copy is sound.
func restoreFromBackup(src, dataDir string, log *slog.Logger) (err error) {
	raw, err := os.ReadFile(filepath.Join(src, manifestName))
	if err != nil {
		return fmt.Errorf("%s is not a complete backup (no %s): %w", src, manifestName, err)
	}
	var m backupManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %w", manifestName, err)
	}
	if m.Format != backupFormat {
		return fmt.Errorf("backup format %d; this gateway reads format %d", m.Format, backupFormat)
	}
	if err := ensureEmptyDir(dataDir); err != nil {
		return fmt.Errorf("restore into a new or empty data dir: %w", err)
	}
	defer func() {
		if err != nil {
			cleanDir(dataDir)
		}
	}()
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch {
		case rel == "." || rel == manifestName:
			return nil
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dataDir, rel), 0o700)
		case !d.Type().IsRegular():
			return nil
		}
		return copyFile(path, filepath.Join(dataDir, rel))
	})
	if err != nil {
		return fmt.Errorf("copy backup: %w", err)
	}
	for _, sub := range []string{"pebble", logsSubdir} {
		scfg := persistence.DefaultConfig()
		scfg.Dir, scfg.Subdir, scfg.Logger, scfg.DisableChangefeed = dataDir, sub, log, sub == logsSubdir
		st, err := persistence.Open(scfg)
		if err != nil {
			return fmt.Errorf("the restored %s store does not open: %w", sub, err)
		}
		if err := st.Close(); err != nil {
			return err
		}
	}
	log.Info("restored from backup", "from", src, "taken_at", m.CreatedAt, "node", m.Node, "data_dir", dataDir)
	return syncDir(dataDir)
}
