//go:build !linux

package proc

import "os/exec"

// setPdeathsig is Linux-only; elsewhere children are stopped by StopAll alone.
func setPdeathsig(*exec.Cmd) {}
