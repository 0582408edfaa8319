//go:build !unix

package lambdaemu

import (
	"os"
	"os/exec"
)

func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(p *os.Process) error { return p.Kill() }
