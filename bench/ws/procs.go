//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childAttrs makes the kernel kill a child (a client process, Centrifugo)
// if this process dies without stopping it.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// rssKiB is the resident set of process pid, from /proc.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// threads is the number of threads of process pid.
func threads(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// clientProc is one client process (this binary, "client" mode).
type clientProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startClient(self string) (*clientProc, error) {
	cmd := exec.Command(self, "client")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttrs()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start client process: %w", err)
	}
	return &clientProc{cmd: cmd, stdin: in, out: bufio.NewReader(out)}, nil
}

// run hands the process its job and returns its report.
func (c *clientProc) run(job clientJob) (clientReport, error) {
	b, _ := json.Marshal(job)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		return clientReport{}, fmt.Errorf("send job: %w", err)
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return clientReport{}, fmt.Errorf("client process ended without a report: %w", err)
	}
	var r clientReport
	if err := json.Unmarshal(line, &r); err != nil {
		return clientReport{}, fmt.Errorf("client report %q: %w", line, err)
	}
	return r, nil
}

// stop closes its connections (stdin closed) and waits for it.
func (c *clientProc) stop() {
	_ = c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}
