package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// errRunning is returned when another `make up` holds the lock.
var errRunning = errors.New("skiff is already running")

// acquireLock writes our pid into path, unless a live process already holds
// it. A lock left by a process that died is taken over.
func acquireLock(path string) error {
	if pid, ok := readPid(path); ok && alive(pid) && pid != os.Getpid() {
		return fmt.Errorf("%w (pid %d, started by make up); stop it with Ctrl-C in its terminal or `kill %d`", errRunning, pid, pid)
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// releaseLock removes the lock if it is still ours.
func releaseLock(path string) {
	if pid, ok := readPid(path); ok && pid == os.Getpid() {
		_ = os.Remove(path)
	}
}

func readPid(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid, err == nil && pid > 0
}

// alive reports whether a process exists, by sending it signal 0.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
