package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImageScratchVariantServesReadyz builds the Dockerfile's runtime
// stage FROM scratch with podman (no base image can be pulled here; the
// builder stage is replaced by a static build on this machine), exports the
// container's root file system, checks the image's user, volume, health
// check and entry point, and runs the binary out of that file system until
// /readyz answers 200 and `gateway healthcheck` agrees. .ci/run installs
// podman; without it the test skips (fails with CI=true).
func TestImageScratchVariantServesReadyz(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	podmanBin, err := exec.LookPath("podman")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed (.ci/run installs it: apt-get install podman)")
		}
		t.Skip("podman is not installed (apt-get install podman)")
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage, err := scratchStage(string(df))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ctxDir := filepath.Join(work, "context")
	if err := os.MkdirAll(filepath.Join(ctxDir, "out", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=image-test", "-o", filepath.Join(ctxDir, "out", "gateway"), "./cmd/gateway")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(stage), 0o644); err != nil {
		t.Fatal(err)
	}
	// A private store, so the test leaves nothing in the machine's podman
	// (its run root must be a short path).
	runroot, err := os.MkdirTemp("", "pm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runroot) })
	podman := func(args ...string) ([]byte, error) {
		base := []string{"--root", filepath.Join(work, "storage"), "--runroot", runroot,
			"--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"}
		cmd := exec.Command(podmanBin, append(base, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+work)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out, nil
	}
	const tag = "localhost/assistiv-gateway-scratch:test"
	if _, err := podman("build", "--format", "docker", "-t", tag, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir); err != nil {
		t.Fatal(err)
	}
	raw, err := podman("image", "inspect", tag)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []struct {
		Config struct {
			User        string
			Env         []string
			Entrypoint  []string
			Cmd         []string
			Volumes     map[string]struct{}
			Healthcheck *struct{ Test []string }
		}
		HealthCheck *struct{ Test []string }
	}
	if err := json.Unmarshal(raw, &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("image inspect: %v\n%s", err, raw)
	}
	cfg := imgs[0].Config
	hc := cfg.Healthcheck
	if hc == nil {
		hc = imgs[0].HealthCheck
	}
	if cfg.User != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532 (non-root)", cfg.User)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("image volumes %v lack /data", cfg.Volumes)
	}
	if hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "/usr/local/bin/gateway healthcheck") {
		t.Errorf("image health check %+v, want gateway healthcheck", hc)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/usr/local/bin/gateway" || strings.Join(cfg.Cmd, " ") != "serve" {
		t.Errorf("entry point %v cmd %v", cfg.Entrypoint, cfg.Cmd)
	}

	if _, err := podman("create", "--name", "gw-export", tag); err != nil {
		t.Fatal(err)
	}
	rootfsTar := filepath.Join(work, "rootfs.tar")
	if _, err := podman("export", "-o", rootfsTar, "gw-export"); err != nil {
		t.Fatal(err)
	}
	_, _ = podman("rm", "gw-export")
	rootfs := filepath.Join(work, "rootfs")
	owners, err := untar(rootfsTar, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	if owners["data"] != 65532 {
		t.Errorf("/data belongs to uid %d in the image, want 65532 (the non-root user)", owners["data"])
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// The image's environment, with the listener on loopback and /data in
	// the exported tree (not run as a container: no runtime is assumed).
	env := []string{"PATH=/usr/bin:/bin"}
	for _, kv := range cfg.Env {
		if !strings.HasPrefix(kv, "ASSISTIV_LISTEN=") && !strings.HasPrefix(kv, "ASSISTIV_DATA_DIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "ASSISTIV_LISTEN="+addr, "ASSISTIV_DATA_DIR="+filepath.Join(rootfs, "data"), "ASSISTIV_ADMIN_KEY=image-test-admin-key-0123", "ASSISTIV_LOG_LEVEL=warn")
	bin := filepath.Join(rootfs, "usr", "local", "bin", "gateway")
	srv := exec.Command(bin, cfg.Cmd...)
	srv.Env = env
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatalf("run the image's binary: %v", err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200 (last: %v); logs:\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	check := exec.Command(bin, "healthcheck")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("gateway healthcheck on a ready node: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "data", "pebble")); err != nil {
		t.Errorf("the node did not keep its store in /data: %v", err)
	}
}

// scratchStage turns the Dockerfile's last (runtime) stage into a
// Containerfile FROM scratch whose COPY lines take the builder's /out
// files from the build context's out/ instead.
func scratchStage(df string) (string, error) {
	lines := strings.Split(df, "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "FROM ") {
			last = i
		}
	}
	if last < 0 {
		return "", errors.New("Dockerfile has no FROM")
	}
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	copies := 0
	for _, l := range lines[last+1:] {
		if strings.HasPrefix(l, "COPY ") {
			if !strings.Contains(l, "--from=build ") || !strings.Contains(l, " /out/") {
				return "", fmt.Errorf("runtime stage line %q: COPY only from the builder's /out", l)
			}
			l = strings.Replace(strings.Replace(l, "--from=build ", "", 1), " /out/", " out/", 1)
			copies++
		}
		b.WriteString(l + "\n")
	}
	if copies == 0 {
		return "", errors.New("the runtime stage copies nothing")
	}
	return b.String(), nil
}

// untar extracts a root file system and returns each top-level entry's owner.
func untar(path, dst string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	owners := map[string]int{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return owners, nil
		}
		if err != nil {
			return nil, err
		}
		name := filepath.Clean(h.Name)
		if name == "." || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		if !strings.Contains(name, "/") {
			owners[name] = h.Uid
		}
		target := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return nil, err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				return nil, err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return nil, err
			}
			out.Close()
		}
	}
}
