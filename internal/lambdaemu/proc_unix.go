//go:build unix

package lambdaemu

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the extension into a process group of its own, so a
// kill also reaches the processes it started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(p *os.Process) error {
	return syscall.Kill(-p.Pid, syscall.SIGKILL)
}
