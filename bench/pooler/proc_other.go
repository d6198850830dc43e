//go:build !linux

package main

import "syscall"

// childAttrs: outside Linux there is no parent-death signal; stop() is what
// ends the server.
func childAttrs() *syscall.SysProcAttr { return nil }
