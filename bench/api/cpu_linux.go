package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

// sampleCPU reads the machine's CPU counters (/proc/stat), the server
// process's CPU time (/proc/<pid>/stat) and this process's (getrusage).
// Counters it cannot read stay zero.
func sampleCPU(serverPID int) cpuSample {
	s := cpuSample{at: time.Now()}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.all += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	s.server = benchenv.ProcessCPU(serverPID)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}
