//go:build !linux

package stack

import "syscall"

// childAttrs: outside Linux there is no parent-death signal; Close is what
// ends the children.
func childAttrs() *syscall.SysProcAttr { return nil }
