package stack

import "syscall"

// childAttrs makes the kernel kill a child (saas, nats-server,
// redis-server) if this process dies without Close (SIGKILL, OOM).
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
