package lambdaemu

import (
	"fmt"
	"os/exec"
	"time"
)

// process is the started extension and the goroutine reaping it.
type process struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed once reaped; err and exitedAt are set then
	err      error
	exitedAt time.Time
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.exitedAt = time.Now()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL, as Lambda does, to the extension and anything it
// started, then waits until it is reaped. Only a process not yet reaped is
// signalled, so a recycled pid is never hit.
func (p *process) kill() {
	if !p.done() {
		if err := killProcessGroup(p.cmd.Process); err != nil {
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.exited
}

// exitCode is the exit status, -1 if killed by a signal or not reaped yet.
func (p *process) exitCode() int {
	if !p.done() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// describe says how the process ended, for error messages.
func (p *process) describe() string {
	if !p.done() {
		return "still running"
	}
	if p.err == nil {
		return "exit status 0"
	}
	return fmt.Sprint(p.err)
}
