package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

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
	if serverPID > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(serverPID) + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
				f := strings.Fields(string(b)[i+1:])
				if len(f) > 12 {
					u, _ := strconv.ParseUint(f[11], 10, 64)
					k, _ := strconv.ParseUint(f[12], 10, 64)
					s.server = time.Duration(u+k) * clockTick
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}
