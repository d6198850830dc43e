//go:build !linux

package main

import (
	"context"
	"errors"
	"time"
)

// idleOptions configure the idle mode.
type idleOptions struct {
	idle, active, width int
	rate                float64
	idleWindow, window  time.Duration
	settle              time.Duration
}

// runIdle reads CPU times from /proc: Linux only.
func runIdle(context.Context, idleOptions, string) error {
	return errors.New("the idle mode runs on Linux only")
}
