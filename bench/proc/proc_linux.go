package proc

import (
	"os/exec"
	"syscall"
)

// setPdeathsig asks the kernel to SIGKILL the child when the thread that
// started it exits, so children never outlive a crashed runner.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
