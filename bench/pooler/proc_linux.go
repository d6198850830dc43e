package main

import "syscall"

// childAttrs makes the kernel kill the server if this process dies without
// cleaning up (SIGKILL, OOM).
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
