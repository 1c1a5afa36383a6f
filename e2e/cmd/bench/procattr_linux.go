package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill a child when the harness dies, so an
// interrupted run leaves no agent, mock or proxy behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
