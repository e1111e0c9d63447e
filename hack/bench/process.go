package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a skiff binary the benchmark runs and measures.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// startProcess runs a program with its output in logDir/NAME.log; it dies
// with the benchmark.
func startProcess(name, logDir, program string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); f.Close() }()
	return &process{name: name, cmd: cmd, log: logPath}, nil
}

// stop ends the process and waits a moment for it.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for p.alive() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
}

func (p *process) alive() bool {
	return p.cmd.ProcessState == nil && syscall.Kill(p.cmd.Process.Pid, 0) == nil
}

// usage is a process's resource use so far.
type usage struct {
	cpu     time.Duration // user + system
	peakRSS int64         // bytes, the kernel's high-water mark
	rss     int64         // bytes, resident now
}

// usage reads the process's CPU time and peak resident memory from /proc.
func (p *process) usage() (usage, error) {
	pid := p.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, fmt.Errorf("%s has exited; see %s", p.name, p.log)
	}
	cpu, err := cpuFromStat(stat)
	if err != nil {
		return usage{}, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: cpu, peakRSS: statusKB(status, "VmHWM") * 1024, rss: statusKB(status, "VmRSS") * 1024}, nil
}

// clockTicks is USER_HZ, which is 100 on every Linux that Go supports.
const clockTicks = 100

// cpuFromStat sums utime and stime, fields 14 and 15 of /proc/PID/stat.
// The command name in field 2 may hold spaces, so fields are counted from
// its closing parenthesis.
func cpuFromStat(stat []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("unreadable /proc stat")
	}
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat")
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// statusKB reads a "Key:   N kB" line of /proc/PID/status.
func statusKB(status []byte, key string) int64 {
	s := bufio.NewScanner(bytes.NewReader(status))
	for s.Scan() {
		line := s.Text()
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}
